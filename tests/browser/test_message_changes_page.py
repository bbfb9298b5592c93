"""The page's edits, deletes and reactions (issue 16): ↑ edits the last message, every page
shows the new text marked (edited), a reaction's count, and a delete, live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People
from tests.browser.test_rooms_page import signed_up

pytestmark = pytest.mark.browser


def test_up_edits_the_last_message_and_others_see_it_edited_reacted_and_deleted(
        people: People) -> None:
    """alice types "helo", presses ↑ in the empty composer, fixes it: bob's page shows
    "hello (edited)"; bob's 👍 shows "👍 1" on alice's page; alice's Delete takes it from bob's."""
    alice = signed_up(people, "alice")
    bob = signed_up(people, "bob")
    alice.say("helo")
    expect(bob.message("helo")).to_be_visible()
    alice.composer.press("ArrowUp")
    expect(alice.composer).to_have_value("helo")
    expect(alice.page.locator(".editing-note")).to_be_visible()
    alice.composer.fill("hello")
    alice.composer.press("Enter")
    expect(bob.message("hello")).to_contain_text("(edited)")
    expect(bob.message("helo")).to_have_count(0)
    expect(alice.composer).to_have_value("")

    bob.message("hello").hover()
    bob.message("hello").get_by_role("button", name="React with 👍").click()
    expect(alice.message("hello").locator(".reaction")).to_have_text("👍 1")

    alice.message("hello").hover()
    alice.message("hello").get_by_role("button", name="Delete your message").click()
    expect(bob.message("hello")).to_have_count(0)
    expect(alice.message("hello")).to_have_count(0)
    expect(bob.message("hello").get_by_role("button", name="Edit your message")).to_have_count(0)
