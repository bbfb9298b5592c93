"""The page's people parts (issue 15): unread and mention counts kept by the server, the "new
messages" line, "New message" to anyone by name, typing in direct conversations, presence."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People, Person, ServerProcess
from tests.browser.test_accounts_page import create_account, open_signed_out, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Locator

pytestmark = pytest.mark.browser


def signed_in(people: People, name: str, account: str | None = None) -> Person:
    """A person's page, signed in as `account` (default: their name)."""
    person = people(name)
    open_signed_out(person)
    sign_in(person, account or name)
    return person


def dm_button(person: Person, peer: str) -> Locator:
    return person.sidebar().locator(".dms .conv", has_text=peer)


def test_unread_and_mention_counts_come_back_after_a_reload_with_the_new_messages_line(
        people: People, server: ServerProcess) -> None:
    """Counts kept by the server survive a reload; reopening draws the line at the first unread."""
    create_account(server, "alice")
    create_account(server, "bob")
    alice, bob = signed_in(people, "alice"), signed_in(people, "bob")
    bob.say("read already")
    expect(alice.message("read already")).to_be_visible()  # shown, seen: read
    alice.join_room("side")
    expect(alice.page.locator(".topbar .where")).to_have_text("#side")
    bob.say("first unread")
    bob.say("second unread, @alice")
    general = alice.room_button("general")
    expect(general.locator(".badge")).to_have_text(re.compile(r"^2"))
    expect(general.locator(".mention-badge")).to_be_visible()

    alice.page.reload()  # the URL says #side: general is joined, but not shown
    alice.composer.wait_for()
    expect(alice.page.locator(".topbar .where")).to_have_text("#side")
    general = alice.room_button("general")
    expect(general.locator(".badge")).to_have_text(re.compile(r"^2"))
    expect(general.locator(".mention-badge")).to_be_visible()
    alice.snap("unread-after-reload")

    alice.open_room("general")
    divider = alice.page.locator(".message-list .unread-divider")
    expect(divider).to_have_count(1)
    expect(alice.page.locator(".unread-divider + li.message .text")).to_have_text("first unread")
    expect(general.locator(".badge")).to_have_count(0)
    alice.snap("new-messages-line")
    # Read now: another reload (to #general) draws no line.
    alice.page.reload()
    alice.composer.wait_for()
    expect(alice.message("second unread, @alice")).to_be_visible()
    expect(alice.page.locator(".topbar .where")).to_have_text("#general")
    expect(divider).to_have_count(0)
    alice.assert_clean()
    bob.assert_clean()


def test_reading_on_one_device_clears_the_count_on_another(
        people: People, server: ServerProcess) -> None:
    """The same account's second page drops its count when the first one reads the messages."""
    create_account(server, "alice")
    create_account(server, "bob")
    laptop, phone = signed_in(people, "laptop", "alice"), signed_in(people, "phone", "alice")
    bob = signed_in(people, "bob")
    for page in (laptop, phone):
        page.join_room("side")
        expect(page.page.locator(".topbar .where")).to_have_text("#side")
    bob.say("for both devices")
    for page in (laptop, phone):
        expect(page.room_button("general").locator(".badge")).to_have_text(re.compile(r"^1"))
    laptop.open_room("general")
    expect(laptop.message("for both devices")).to_be_visible()
    expect(phone.room_button("general").locator(".badge")).to_have_count(0)
    assert any(f["type"] == "read" and f.get("room") == "general"
               for frames in laptop.sent for f in frames)
    assert not any(f["type"] == "read" for frames in phone.sent for f in frames
                   if f.get("room") == "general" and f.get("id", 0) > 1)
    laptop.assert_clean()
    phone.assert_clean()


def test_a_new_message_by_name_reaches_an_offline_account_when_it_signs_in(
        people: People, server: ServerProcess) -> None:
    """"New message" finds an offline account by name; it reads the message unread on sign-in."""
    create_account(server, "alice")
    create_account(server, "bobby")  # never signed in: known to no page yet
    alice = signed_in(people, "alice")
    side = alice.sidebar()
    side.get_by_role("button", name="New message").click()
    to = side.get_by_role("combobox", name=re.compile("^To"))
    to.fill("bobby")
    option = side.get_by_role("option", name=re.compile("bobby"))
    expect(option).to_be_visible()  # the server said bobby is someone
    alice.snap("new-message")
    option.click()
    expect(alice.page.locator(".topbar .where")).to_have_text("@bobby")
    expect(alice.page.locator(".dm-header .presence-text")).to_have_text("Offline")
    alice.say("waiting for you, bobby")
    expect(alice.message("waiting for you, bobby")).to_be_visible()

    bobby = signed_in(people, "bobby")
    row = dm_button(bobby, "alice")
    expect(row.locator(".badge")).to_have_text(re.compile(r"^1"))
    row.click()
    expect(bobby.message("waiting for you, bobby")).to_be_visible()
    expect(row.locator(".badge")).to_have_count(0)
    # Typing in a direct conversation shows on the other side, in that conversation.
    bobby.composer.fill("typing back")
    expect(alice.page.locator(".typing")).to_have_text("bobby is typing…")
    expect(alice.page.locator(".dm-header .presence-text")).to_have_text("Online")
    # By keyboard: the arrow picks a suggestion (bobby is known now), Enter opens it.
    alice.open_room("general")
    side.get_by_role("button", name="New message").click()
    to = side.get_by_role("combobox", name=re.compile("^To"))
    to.fill("BOB")
    expect(side.get_by_role("option")).to_have_text(["bobby (Online)"])
    to.press("ArrowDown")
    expect(to).to_have_attribute("aria-activedescendant", "new-message-option-0")
    to.press("Enter")
    expect(alice.page.locator(".topbar .where")).to_have_text("@bobby")
    # A name that is nobody's is said to be so.
    side.get_by_role("button", name="New message").click()
    side.get_by_role("combobox", name=re.compile("^To")).fill("nobody-at-all")
    side.get_by_role("button", name="Open", exact=True).click()
    expect(side.locator("#new-message-error")).to_have_text("Nobody is called nobody-at-all.")
    alice.assert_clean()
    bobby.assert_clean()


@pytest.mark.server_args("--away-after=1", "--join-grace=0")
def test_a_direct_conversation_shows_away_then_last_seen(
        people: People, server: ServerProcess) -> None:
    """A party idle past away-after shows away in the list and the DM; gone, its last seen."""
    create_account(server, "alice")
    create_account(server, "bob")
    alice, bob = signed_in(people, "alice"), signed_in(people, "bob")
    member = bob.sidebar().locator(".people .conv", has_text="alice")
    expect(member.locator(".presence-dot.away")).to_have_count(1)  # alice does nothing
    member.click()
    header = bob.page.locator(".dm-header")
    expect(header.locator(".presence-text")).to_have_text("Away")
    expect(dm_button(bob, "alice").locator(".presence-dot.away")).to_have_count(1)
    alice.page.locator("#composer-text").click()  # activity: online again
    expect(header.locator(".presence-text")).to_have_text("Online")
    alice.assert_clean()
    alice.context.close()
    bob.open_room("general")
    dm_button(bob, "alice").click()  # the header asks again when it is shown
    expect(header.locator(".presence-text")).to_have_text(
        "Offline, last seen just now")
    expect(dm_button(bob, "alice").locator(".presence-dot.offline")).to_have_count(1)
    bob.snap("last-seen")
    bob.assert_clean()
