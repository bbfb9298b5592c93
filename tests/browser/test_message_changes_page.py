"""The page's edits, deletes and reactions (issue 16): ↑ edits the last message, every page
shows the new text marked (edited), a reaction's count, and a delete, live."""

from __future__ import annotations

import re

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


def test_a_page_that_was_offline_learns_the_edit_and_delete_on_rejoin(people: People) -> None:
    """bob's page goes offline; meanwhile alice edits one message and deletes another; once
    bob's page is back its rejoin (`since` and `changes`) shows the edit and drops the other."""
    alice = signed_up(people, "alice")
    bob = signed_up(people, "bob")
    bob.allow_ws_failures = True  # refused reconnect attempts while offline
    alice.say("first")
    alice.say("second")
    expect(bob.message("second")).to_be_visible()
    bob.context.set_offline(True)
    bob.page.evaluate("""async () => {
      const src = [...document.scripts].map((s) => s.src).find((u) => u.includes('main'));
      const m = await import(src.replace(/main[.]js.*/, 'state/index.js'));
      m.session.conn.ws.close();
    }""")
    expect(bob.page.locator(".banner")).to_contain_text("Connection lost")
    alice.message("first").hover()
    alice.message("first").get_by_role("button", name="Edit your message").click()
    alice.composer.fill("first, fixed")
    alice.composer.press("Enter")
    expect(alice.message("first, fixed")).to_contain_text("(edited)")
    alice.message("second").hover()
    alice.message("second").get_by_role("button", name="Delete your message").click()
    expect(alice.message("second")).to_have_count(0)
    expect(bob.message("second")).to_be_visible()  # not told: offline
    bob.context.set_offline(False)
    expect(bob.message("first, fixed")).to_contain_text("(edited)", timeout=20_000)
    expect(bob.message("second")).to_have_count(0)


def test_a_page_that_was_offline_learns_a_direct_message_s_changes_on_reconnect(
        people: People) -> None:
    """bob's page holds alice's two direct messages and goes offline; meanwhile alice edits
    one (naming @bob now) and deletes the other; once bob's page is back it asks `changes`
    for the conversation and shows the edit, marked as mentioning him, without the other."""
    alice = signed_up(people, "alice")
    bob = signed_up(people, "bob")
    bob.allow_ws_failures = True  # refused reconnect attempts while offline
    side = alice.sidebar()
    side.get_by_role("button", name="New message").click()
    side.get_by_role("combobox", name=re.compile("^To")).fill("bob")
    side.get_by_role("option", name=re.compile("bob")).click()
    expect(alice.page.locator(".topbar .where")).to_have_text("@bob")
    alice.say("first")
    alice.say("second")
    bob.sidebar().locator(".dms .conv", has_text="alice").click()
    expect(bob.message("second")).to_be_visible()
    expect(bob.message("first")).not_to_have_class(re.compile(r"\bmentions-me\b"))
    bob.context.set_offline(True)
    bob.page.evaluate("""async () => {
      const src = [...document.scripts].map((s) => s.src).find((u) => u.includes('main'));
      const m = await import(src.replace(/main[.]js.*/, 'state/index.js'));
      m.session.conn.ws.close();
    }""")
    expect(bob.page.locator(".banner")).to_contain_text("Connection lost")
    alice.message("first").hover()
    alice.message("first").get_by_role("button", name="Edit your message").click()
    alice.composer.fill("first, fixed for @bob")
    alice.composer.press("Enter")
    expect(alice.message("first, fixed")).to_contain_text("(edited)")
    alice.message("second").hover()
    alice.message("second").get_by_role("button", name="Delete your message").click()
    expect(alice.message("second")).to_have_count(0)
    expect(bob.message("second")).to_be_visible()  # not told: offline
    bob.context.set_offline(False)
    expect(bob.message("first, fixed")).to_contain_text("(edited)", timeout=20_000)
    expect(bob.message("first, fixed")).to_have_class(re.compile(r"\bmentions-me\b"))
    expect(bob.message("second")).to_have_count(0)
    asked = [f for frames in bob.sent[1:] for f in frames if f["type"] == "changes"]
    assert asked and asked[0]["with"] == "alice", asked
    bob.snap("dm-changes-after-reconnect")
    alice.assert_clean()  # bob's page logged the loads refused while it was offline
