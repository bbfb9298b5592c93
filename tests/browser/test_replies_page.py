"""Replying on the page: the quote above the composer, the quote on the reply, and a click on
it that shows the original, loading older history until it is there."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People

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
