"""The page's behaviour as a reader sees it: a phone-sized screen, scrolling, history."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, People, Person

pytestmark = pytest.mark.browser


def no_sideways_scroll(person: Person) -> None:
    width = person.page.evaluate("document.documentElement.scrollWidth")
    viewport = person.page.viewport_size
    assert viewport is not None
    assert width <= viewport["width"], width


def test_usable_on_a_360_px_screen(people: People) -> None:
    """At 360 px the sidebar is a drawer; joining, switching and sending all work."""
    alice = people("alice", viewport=PHONE)
    alice.open()
    no_sideways_scroll(alice)
    alice.snap("join-form")
    alice.join()
    sidebar = alice.page.locator("#sidebar")
    expect(sidebar).not_to_be_visible()
    alice.join_room("phones")  # opens the drawer, which closes again on the new room
    expect(sidebar).not_to_be_visible()
    expect(alice.page.locator(".topbar .where")).to_have_text("#phones")

    bob = people("bob")
    bob.open("/#phones")
    bob.join()
    bob.say("hello small screen " + "x" * 120 + " https://example.org/" + "long-path/" * 20)
    expect(alice.message("hello small screen")).to_be_visible()
    no_sideways_scroll(alice)

    bob.open_room("general")
    bob.say("news in general")
    menu = alice.page.get_by_role("button", name=re.compile("^Rooms and people"))
    expect(menu.locator(".badge")).to_have_text(re.compile(r"^1"))
    alice.composer.fill("a reply\nover two lines")
    alice.composer.press("Enter")
    expect(bob.page.locator(".conv", has_text="#phones").locator(".badge")).to_be_visible()
    alice.sidebar()
    expect(sidebar).to_be_visible()
    alice.snap("drawer")
    alice.sidebar().get_by_role("button", name=re.compile(r"^#general")).click()
    expect(alice.message("news in general")).to_be_in_viewport()
    no_sideways_scroll(alice)
    alice.assert_clean()
    bob.assert_clean()


@pytest.mark.server_args("--rate-limit=0")
def test_follows_new_messages_only_when_at_the_bottom(people: People) -> None:
    """At the bottom new messages scroll into view; scrolled up, a marker appears instead."""
    alice, bob = people("alice"), people("bob")
    for person in (alice, bob):
        person.open()
        person.join()
    for i in range(40):
        bob.say(f"message {i}")
    expect(alice.message("message 39")).to_be_in_viewport(timeout=20_000)

    alice.page.locator(".messages").evaluate("el => { el.scrollTop = 0; }")
    expect(alice.message("message 0")).to_be_in_viewport()
    bob.say("while alice reads old ones")
    marker = alice.page.get_by_role("button", name="New messages ↓")
    expect(marker).to_be_visible()
    expect(alice.message("message 0")).to_be_in_viewport()  # her place is kept
    alice.snap("new-messages-marker")
    marker.click()
    expect(alice.message("while alice reads old ones")).to_be_in_viewport()
    expect(marker).to_have_count(0)

    # Her own message always brings her to the end.
    alice.page.locator(".messages").evaluate("el => { el.scrollTop = 0; }")
    alice.say("my own")
    expect(alice.message("my own")).to_be_in_viewport()
    alice.assert_clean()
    bob.assert_clean()


@pytest.mark.server_args("--history-on-join=30", "--rate-limit=0")
def test_recent_history_on_join_and_older_pages_on_scrolling_up(people: People) -> None:
    """A joiner sees the recent messages; scrolling to the top brings the older ones, in order."""
    alice = people("alice")
    alice.open()
    alice.join()
    for i in range(70):
        alice.say(f"old {i}")
    # The page paces a burst of sends to stay under the server's default rate limit.
    expect(alice.message("old 69")).to_be_visible(timeout=20_000)

    bob = people("bob")
    bob.open()
    expect(bob.message("old 69")).to_be_visible()  # before joining, the page shows #general
    bob.join()
    expect(bob.page.locator(".message")).to_have_count(30)
    assert bob.message_texts() == [f"old {i}" for i in range(40, 70)]
    expect(bob.message("old 69")).to_be_in_viewport()
    expect(bob.page.get_by_role("button", name="Load older messages")).to_be_attached()
    bob.page.locator(".messages").evaluate("el => { el.scrollTop = 0; }")
    expect(bob.page.locator(".message")).to_have_count(70)
    assert bob.message_texts() == [f"old {i}" for i in range(70)]
    expect(bob.page.get_by_role("button", name="Load older messages")).to_have_count(0)
    expect(bob.message("old 40")).to_be_in_viewport()  # the reader's place stayed put
    alice.assert_clean()
    bob.assert_clean()


# Pages of ~2 KiB at ~1 KiB/s: the second page asked for at once is refused (rate_limited).
@pytest.mark.server_args("--history-on-join=5", "--rate-limit=0", "--history-max-bytes=2048",
                         "--history-bytes-per-s=1024")
def test_history_refused_for_its_rate_is_loaded_on_asking_again(people: People) -> None:
    """A history page refused as rate_limited is not the end: asking again later loads it."""
    alice = people("alice")
    alice.open()
    alice.join()
    for i in range(40):
        alice.say(f"old {i}")
    expect(alice.message("old 39")).to_be_visible(timeout=20_000)
    bob = people("bob")
    bob.open()
    bob.join()
    expect(bob.message("old 39")).to_be_visible()
    older = bob.page.get_by_role("button", name="Load older messages")
    for _ in range(60):  # each click asks for a page; some are refused until the budget refills
        if bob.message("old 0").count():
            break
        if older.count():
            older.click()
        bob.page.wait_for_timeout(300)
    expect(bob.message("old 0")).to_be_attached()
    assert bob.message_texts() == [f"old {i}" for i in range(40)]
    alice.assert_clean()
    bob.assert_clean()


def test_direct_conversation_shows_earlier_messages_after_a_reload(people: People) -> None:
    """A direct conversation opened anew loads what the two said before."""
    alice, bob = people("alice"), people("bob")
    # alice has an account: after the reload she is the same person (a guest would not be, and
    # would read none of the conversations of the guest who held the name before).
    alice.open()
    alice.page.get_by_role("button", name="Create an account").click()
    alice.page.get_by_label("Username").fill("alice")
    alice.page.get_by_label("Password").fill("correct horse battery")
    alice.page.get_by_role("button", name="Create account", exact=True).click()
    alice.composer.wait_for()
    bob.open()
    bob.join()
    bob.sidebar().get_by_role("button", name="Direct message alice").click()
    bob.say("first private word")
    expect(alice.page.locator("#sidebar .dms")).to_contain_text("bob")

    alice.page.reload()
    alice.composer.wait_for()  # still signed in: straight back to the chat
    bob.say("second private word")
    alice.page.locator("#sidebar .dms .conv", has_text="bob").click()
    expect(alice.message("second private word")).to_be_visible()
    assert alice.message_texts() == ["first private word", "second private word"]
    alice.assert_clean()
    bob.assert_clean()
