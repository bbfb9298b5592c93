"""Replying on the page: the quote above the composer, the quote on the reply, and a click on
it that shows the original, loading older history until it is there."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People
from tests.browser.test_rooms_page import browse, create_room, signed_up

pytestmark = pytest.mark.browser


@pytest.mark.server_args("--history-on-join", "5")
def test_a_reply_quotes_its_original_and_jumps_to_it_through_older_history(
    people: People,
) -> None:
    """alice answers an old message; bob, who joins later and is sent only the last five,
    sees the quote and, clicking it, gets the original loaded and scrolled into view."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.say("the **original** question")
    for n in range(8):
        alice.say(f"filler {n}")
    expect(alice.message("filler 7")).to_be_visible()

    original = alice.message("original")
    original.hover()
    original.get_by_role("button", name="Reply to alice").click()
    replying = alice.page.locator(".composer .replying")
    expect(replying).to_contain_text("Replying to alice the **original** question")
    expect(alice.composer).to_be_focused()
    alice.page.get_by_role("button", name="Cancel the reply").click()
    expect(replying).to_have_count(0)
    original.get_by_role("button", name="Reply to alice").click()
    alice.say("here is the answer")
    expect(replying).to_have_count(0)  # sent: the composer answers nothing any more
    reply = alice.message("here is the answer")
    expect(reply.locator(".quote")).to_have_text("alice the **original** question")

    bob = people("bob")
    bob.open()
    bob.join()
    quote = bob.message("here is the answer").locator(".quote")
    expect(quote).to_have_text("alice the **original** question")
    expect(bob.message("original")).to_have_count(0)  # older than the join's five
    quote.click()
    expect(bob.message("original")).to_be_in_viewport()
    expect(bob.message("original").locator("strong")).to_have_text("original")
    sent = [f for frames in alice.sent for f in frames if f.get("type") == "message"]
    assert [f.get("reply_to") for f in sent if f["text"] == "here is the answer"] == [1]
    alice.assert_clean()
    bob.assert_clean()


def test_a_quote_shows_its_original_deleted_once_a_moderator_removes_it(
    people: People,
) -> None:
    """The owner removes a message that bob answered: on both pages the original goes and the
    reply's quote says the message was deleted, with none of its text."""
    alice = signed_up(people, "alice")
    create_room(alice, "club")
    bob = signed_up(people, "bob")
    browse(bob, "club").get_by_role("button", name="Join #club").click()
    expect(bob.room_button("club")).to_be_visible()
    alice.say("my password is hunter2")
    original = bob.message("hunter2")
    original.hover()
    original.get_by_role("button", name="Reply to alice").click()
    bob.say("you pasted a password")
    for person in (alice, bob):
        expect(person.message("you pasted").locator(".quote")).to_contain_text("hunter2")
    alice.message("hunter2").get_by_role("button", name="Remove the message of alice").click()
    for person in (alice, bob):
        expect(person.message("hunter2")).to_have_count(0)
        quote = person.message("you pasted").locator(".quote")
        expect(quote).to_have_text("Replying to a deleted message")
        expect(quote).to_have_class(re.compile(r"\bdeleted\b"))
    alice.assert_clean()
    bob.assert_clean()
