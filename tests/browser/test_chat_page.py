"""The chat page in a real browser: joining, talking, rooms, direct messages, presence, typing."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People

pytestmark = pytest.mark.browser


@pytest.mark.server_args("--avatars", "gravatar")
def test_two_people_chat_both_ways(people: People) -> None:
    """Two people join and each sees the other's messages, with avatar, name and time."""
    alice = people("alice")
    response = alice.open()
    assert "script-src 'self'" in response.headers["content-security-policy"]
    alice.join(email="Alice@Example.org ")
    bob = people("bob")
    bob.open()
    bob.join()

    alice.say("Hello Bob :robot:")
    row = bob.message("Hello Bob")
    expect(row).to_be_visible()
    expect(row.locator(".text")).to_have_text("Hello Bob 🤖")  # the server's emoji
    expect(row.locator(".name")).to_have_text("alice")
    expect(row.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    bob.say("Hi Alice, all good?")
    expect(alice.message("Hi Alice, all good?")).to_be_visible()

    # Own messages are set apart; the other person's are not.
    expect(alice.message("Hello Bob")).to_have_class(re.compile(r"\bmine\b"))
    expect(alice.message("Hi Alice")).not_to_have_class(re.compile(r"\bmine\b"))
    assert alice.message_texts() == ["Hello Bob 🤖", "Hi Alice, all good?"]
    assert bob.message_texts() == ["Hello Bob 🤖", "Hi Alice, all good?"]

    # Gravatar was asked (md5 of the trimmed, lower-cased email) and, refused here, every
    # avatar fell back to the picture the page draws.
    digest = hashlib.md5(b"alice@example.org").hexdigest()
    assert any(f"/avatar/{digest}" in url for url in bob.gravatar_requests), bob.gravatar_requests
    for person in (alice, bob):
        sources = person.page.locator(".message img.avatar").evaluate_all(
            "imgs => imgs.map(i => i.getAttribute('src'))")
        assert sources and all(src.startswith("data:image/png") for src in sources), sources
        person.assert_clean()


def test_enter_sends_and_shift_enter_adds_a_line(people: People) -> None:
    """Enter sends; Shift+Enter puts a new line in the message, which shows as typed."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.composer.type("first line")
    alice.composer.press("Shift+Enter")
    alice.composer.type("second line")
    expect(alice.page.locator(".message")).to_have_count(0)
    alice.composer.press("Enter")
    expect(alice.message("first line").locator(".text")).to_have_text("first line\nsecond line")
    expect(alice.composer).to_have_value("")
    alice.assert_clean()


def test_links_are_clickable_only_for_http_and_https(people: People) -> None:
    """http(s) links become links that open safely; other schemes stay text."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.say("docs at https://example.org/a?b=1&c=2. and javascript:alert(1) and ftp://x.org/")
    text = alice.message("docs at").locator(".text")
    expect(text).to_have_text("docs at https://example.org/a?b=1&c=2. and javascript:alert(1) "
                              "and ftp://x.org/")
    links = text.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.org/a?b=1&c=2")
    expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(links).to_have_attribute("target", "_blank")
    alice.assert_clean()


@pytest.mark.server_args("--avatars", "gravatar")  # the email field is there to be refused
def test_join_errors_show_next_to_the_field(people: People) -> None:
    """A name that is taken or invalid is refused, and the reason shows under its field."""
    alice = people("alice")
    alice.open()
    alice.join()
    other = people("other")
    other.open()
    other.as_guest()
    page = other.page

    page.get_by_label("Username").fill("ALICE")
    page.get_by_role("button", name="Join", exact=True).click()
    error = page.locator("#join-username-error")
    expect(error).to_be_visible()
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    other.snap("name-taken")

    page.get_by_label("Username").fill("x" * 40)
    page.get_by_role("button", name="Join", exact=True).click()
    expect(error).to_contain_text("32")

    page.get_by_label("Username").fill("carol")
    page.get_by_label("Email (optional, only for your Gravatar picture)").fill("not-an-address")
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.locator("#join-email-error")).to_be_visible()

    page.get_by_label("Email (optional, only for your Gravatar picture)").fill("")
    page.get_by_role("button", name="Join", exact=True).click()
    expect(other.composer).to_be_visible()
    expect(page.locator(".whoami-name")).to_have_text("carol")
    alice.assert_clean()
    other.assert_clean()


def test_rooms_switch_unread_and_url(people: People) -> None:
    """Rooms are joined from the sidebar or the URL, counted unread, and left."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.join_room("Ops")  # stored lower-case
    expect(alice.room_button("ops")).to_have_attribute("aria-current", "page")
    expect(alice.page).to_have_url(re.compile(r"/#ops$"))
    expect(alice.page.locator(".topbar .where")).to_have_text("#ops")

    bob = people("bob")
    bob.open("/#ops")  # a link to the room opens it once joined
    bob.join()
    expect(bob.room_button("ops")).to_have_attribute("aria-current", "page")
    expect(bob.room_button("general")).to_be_visible()

    carol = people("carol")
    carol.open()
    carol.join()

    alice.say("ops only")
    expect(bob.message("ops only")).to_be_visible()
    carol.say("general for all")
    # alice and bob are looking at #ops: #general counts the message as unread.
    expect(alice.room_button("general").locator(".badge")).to_have_text(re.compile(r"^1"))
    expect(carol.message("ops only")).to_have_count(0)
    alice.open_room("general")
    expect(alice.message("general for all")).to_be_visible()
    expect(alice.room_button("general").locator(".badge")).to_have_count(0)
    expect(alice.page).to_have_url(re.compile(r"/#general$"))
    assert alice.message_texts() == ["general for all"]

    # A link to another room (the URL's #room) joins it.
    alice.page.evaluate("location.hash = '#later'")
    expect(alice.room_button("later")).to_have_attribute("aria-current", "page")

    # Leaving: the room goes from the sidebar and the others are told.
    bob.open_room("ops")
    alice.sidebar().get_by_role("button", name="Leave #ops").click()
    expect(alice.room_button("ops")).to_have_count(0)
    expect(bob.page.locator(".notice", has_text="alice left #ops")).to_be_visible()
    expect(bob.page.locator("#sidebar .people")).not_to_contain_text("alice")
    for person in (alice, bob, carol):
        person.assert_clean()


def test_direct_messages_reach_only_the_two_people(people: People) -> None:
    """A name in the online list opens a direct conversation that a third person never sees."""
    alice, bob, carol = people("alice"), people("bob"), people("carol")
    for person in (alice, bob, carol):
        person.open()
        person.join()
    expect(bob.page.locator("#sidebar .people")).to_contain_text("carol")

    bob.sidebar().get_by_role("button", name="Direct message alice").click()
    expect(bob.page.locator(".topbar .where")).to_have_text("@alice")
    bob.say("a secret for alice")
    expect(bob.message("a secret for alice")).to_be_visible()

    # alice is looking at #general: the conversation appears with an unread count.
    dm = alice.page.locator("#sidebar .dms .conv", has_text="bob")
    expect(dm.locator(".badge")).to_have_text(re.compile(r"^1"))
    dm.click()
    expect(alice.message("a secret for alice")).to_be_visible()
    alice.say("got it, bob")
    expect(bob.message("got it, bob")).to_be_visible()
    expect(alice.message("got it, bob")).to_have_class(re.compile(r"\bmine\b"))

    # carol was online all along and saw none of it.
    carol.say("anyone here?")
    expect(alice.page.locator("#sidebar .rooms .badge")).to_have_text(re.compile(r"^1"))
    expect(carol.page.get_by_text("secret")).to_have_count(0)
    expect(carol.page.get_by_text("got it")).to_have_count(0)
    expect(carol.page.locator("#sidebar .dms")).to_have_count(0)
    for person in (alice, bob, carol):
        person.assert_clean()


def test_a_refused_message_says_why_and_can_be_retried_or_discarded(people: People) -> None:
    """A message the server refuses stays in place with its reason, Retry and Discard."""
    alice, bob = people("alice"), people("bob")
    for person in (alice, bob):
        person.open()
        person.join()
    alice.sidebar().get_by_role("button", name="Direct message bob").click()
    alice.open_room("general")
    bob.context.close()
    expect(alice.page.locator(".notice", has_text="bob left #general")).to_be_visible()
    alice.page.locator("#sidebar .dms .conv", has_text="bob").click()
    alice.say("are you there?")
    failed = alice.page.locator(".message.failed", has_text="are you there?")
    expect(failed.locator(".status")).to_contain_text("Not sent:")
    expect(failed.locator(".status")).to_contain_text("bob is offline")
    failed.get_by_role("button", name="Retry").click()
    expect(failed.locator(".status")).to_contain_text("bob is offline")  # refused again
    alice.snap("refused")
    failed.get_by_role("button", name="Discard").click()
    expect(failed).to_have_count(0)

    alice.open_room("general")
    alice.say("x" * 4001)  # caught before sending (test_first_use.py has the rest)
    expect(alice.page.locator(".composer .count")).to_contain_text("4,000")
    expect(alice.page.locator(".message.pending")).to_have_count(0)
    alice.assert_clean()


def test_presence_notices_and_typing(people: People) -> None:
    """Who is online updates as people come and go; typing shows under the messages."""
    alice = people("alice")
    alice.open()
    alice.join()
    online = alice.page.locator("#sidebar .people")
    expect(online).to_contain_text("alice")
    expect(online.locator("h2")).to_have_text("Online in #general (1)")

    bob = people("bob")
    bob.open()
    bob.join()
    expect(online.locator("h2")).to_have_text("Online in #general (2)")
    expect(alice.page.locator(".notice", has_text="bob joined #general")).to_be_visible()
    expect(bob.page.locator("#sidebar .people")).to_contain_text("alice")

    bob.composer.type("I am writ")
    expect(alice.page.locator(".typing")).to_have_text("bob is typing…")
    bob.composer.press("Enter")
    expect(alice.message("I am writ")).to_be_visible()
    expect(alice.page.locator(".typing")).to_have_text("")  # the message ends the typing
    bob.composer.type("and more")  # straight after sending: still announced
    expect(alice.page.locator(".typing")).to_have_text("bob is typing…")

    bob.context.close()  # the tab goes away: the server drops the connection
    expect(alice.page.locator(".notice", has_text="bob left #general")).to_be_visible()
    expect(online.locator("h2")).to_have_text("Online in #general (1)")
    alice.assert_clean()


def test_mentions_are_highlighted_and_notify_when_hidden(people: People) -> None:
    """@name is highlighted; with the tab hidden the title counts and a mention notifies."""
    alice = people("alice")
    # The tab's visibility and the Notification API, controlled by the test: headless
    # Chromium has no real tabs to hide nor a desktop to notify.
    alice.context.add_init_script(HIDDEN_TAB_AND_NOTIFICATIONS)
    alice.open()
    alice.join()
    bob = people("bob")
    bob.open()
    bob.join()

    alice.page.evaluate("window.__setHidden(true)")
    bob.say("no mention here")
    bob.say("@alice look at this")
    row = alice.message("look at this")
    expect(row).to_have_class(re.compile(r"\bmentions-me\b"))
    expect(row.locator(".mention.me")).to_have_text("@alice")
    expect(alice.page).to_have_title(re.compile(r"^\(2\) "))
    notes = alice.page.evaluate("window.__notifications")
    assert notes == [{"title": "bob in #general", "body": "@alice look at this"}]

    alice.page.evaluate("window.__setHidden(false)")
    expect(alice.page).to_have_title("#general · Simple Chat")
    # A mention of someone else is marked, but not as one of alice's.
    alice.say("@bob thanks")
    expect(bob.message("@bob thanks").locator(".mention.me")).to_have_text("@bob")
    own = alice.message("@bob thanks").locator(".mention")
    expect(own).not_to_have_class(re.compile(r"\bme\b"))
    alice.assert_clean()
    bob.assert_clean()


HIDDEN_TAB_AND_NOTIFICATIONS = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, 'hidden', { get: () => hidden, configurable: true });
  Object.defineProperty(Document.prototype, 'visibilityState', {
    get: () => (hidden ? 'hidden' : 'visible'), configurable: true });
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event('visibilitychange'));
  };
  window.__notifications = [];
  window.Notification = class {
    static permission = 'granted';
    static requestPermission() { return Promise.resolve('granted'); }
    constructor(title, options) { window.__notifications.push({ title, body: options.body }); }
    close() {}
  };
})();
"""
