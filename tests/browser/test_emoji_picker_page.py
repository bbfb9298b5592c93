"""The emoji picker for reactions (issue 16): opened from a message, searched, picked with the
mouse or the keyboard alone; its data comes from our server only, on first use."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.conftest import People, Person, box
from tests.browser.test_accounts_page import open_signed_out, register
from tests.browser.test_rooms_page import signed_up

pytestmark = pytest.mark.browser

DATA_PATH = "/static/vendor/emoji.json"


def picker(person: Person) -> Locator:
    return person.page.get_by_role("dialog", name="React to alice's message")


def inside_window(person: Person, locator: Locator) -> None:
    """`locator` is drawn wholly inside the window."""
    rect = box(locator)
    size = person.page.viewport_size
    assert size is not None
    assert rect["x"] >= 0 and rect["y"] >= 0, rect
    assert rect["x"] + rect["width"] <= size["width"], (rect, size)
    assert rect["y"] + rect["height"] <= size["height"], (rect, size)


def test_a_reaction_picked_and_searched_in_the_picker_shows_live_on_another_page(
        people: People) -> None:
    """bob opens the picker from alice's message (the data loads only then, from our server),
    searches "tada", picks 🎉: both pages show "🎉 1"; the + beside it reopens the picker
    with 🎉 first under "Recently used", and picking 🎉 again takes the reaction back."""
    alice = signed_up(people, "alice")
    bob = signed_up(people, "bob")
    alice.say("we shipped it")
    message = bob.message("we shipped it")
    expect(message).to_be_visible()
    assert not any(DATA_PATH in url for url in bob.requests)  # lazily: not before it opens

    message.hover()
    message.get_by_role("button", name="Choose an emoji to react with").click()
    dialog = picker(bob)
    expect(dialog.get_by_role("option", name="grinning face", exact=True)).to_be_visible()
    expect(dialog.get_by_role("group", name="Smileys & emotion")).to_be_visible()
    expect(dialog.get_by_role("combobox")).to_be_focused()
    inside_window(bob, dialog)
    bob.snap("picker-open")
    everything = dialog.get_by_role("option").count()
    assert everything > 1500, everything

    dialog.get_by_role("combobox").fill("tada")
    expect(dialog.get_by_role("option", name="party popper")).to_be_visible()
    assert dialog.get_by_role("option").count() < 10
    dialog.get_by_role("combobox").fill(":thumbsup:")  # a shortcode
    expect(dialog.get_by_role("option")).to_have_count(1)
    expect(dialog.get_by_role("option")).to_have_accessible_name("thumbs up")
    dialog.get_by_role("combobox").fill("zzzz no such emoji")
    expect(dialog).to_contain_text("No emoji found")
    dialog.get_by_role("combobox").fill("party")
    bob.snap("picker-search")
    dialog.get_by_role("option", name="party popper").click()
    expect(dialog).to_have_count(0)
    expect(message.locator(".reaction")).to_have_text("🎉 1")
    expect(alice.message("we shipped it").locator(".reaction")).to_have_text("🎉 1")

    message.get_by_role("button", name="Add a reaction").click()
    recent = picker(bob).get_by_role("group", name="Recently used")
    expect(recent.get_by_role("option").first).to_have_accessible_name("party popper")
    recent.get_by_role("option", name="party popper").click()
    expect(alice.message("we shipped it").locator(".reaction")).to_have_count(0)

    assert any(url == bob.base_url + DATA_PATH for url in bob.requests)
    ws_base = bob.base_url.replace("http://", "ws://", 1)
    for url in bob.requests + bob.sockets:
        assert url.startswith((bob.base_url + "/", ws_base + "/")), url
    bob.assert_clean()
    alice.assert_clean()


def test_the_keyboard_alone_opens_moves_picks_and_escapes(people: People) -> None:
    """From the focused React button: Enter opens the picker, → → and ↓ move, Enter reacts
    with the emoji under the cursor; Enter opens it again and Escape closes it, focus back
    on the button; Shift+Tab out of it closes it too."""
    alice = signed_up(people, "alice")
    bob = signed_up(people, "bob")
    alice.say("keyboard only")
    react = bob.message("keyboard only").get_by_role(
        "button", name="Choose an emoji to react with")
    react.focus()
    bob.page.keyboard.press("Enter")
    dialog = picker(bob)
    search = dialog.get_by_role("combobox")
    expect(search).to_be_focused()
    expect(dialog.get_by_role("option", name="grinning face", exact=True)).to_be_visible()
    bob.page.keyboard.press("ArrowRight")
    bob.page.keyboard.press("ArrowRight")
    bob.page.keyboard.press("ArrowDown")  # the third column of the second row: the 11th
    chosen = dialog.get_by_role("option").nth(10)
    expect(chosen).to_have_attribute("aria-selected", "true")
    active = search.get_attribute("aria-activedescendant")
    assert active == chosen.get_attribute("id")
    char = chosen.inner_text()
    bob.page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    expect(alice.message("keyboard only").locator(".reaction")).to_have_text(f"{char} 1")
    expect(react).to_be_focused()

    bob.page.keyboard.press("Enter")
    expect(search).to_be_focused()
    bob.page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(react).to_be_focused()
    bob.page.keyboard.press("Enter")
    expect(search).to_be_focused()
    bob.page.keyboard.press("Shift+Tab")  # back out of the picker, to the page
    expect(dialog).to_have_count(0)
    expect(alice.message("keyboard only").locator(".reaction")).to_have_text(f"{char} 1")
    bob.assert_clean()


def test_the_picker_stays_inside_a_small_window(people: People) -> None:
    """On a phone-sized window (in dark mode), the picker opened from the lowest message fits
    the window; its Flags tab brings the flags into view."""
    alice = signed_up(people, "alice")
    bob = people("bob", viewport={"width": 360, "height": 560}, color_scheme="dark")
    open_signed_out(bob)
    register(bob)
    for n in range(3):
        alice.say(f"line {n}")
    message = bob.message("line 2")
    expect(message).to_be_visible()
    message.hover()
    message.get_by_role("button", name="Choose an emoji to react with").click()
    dialog = picker(bob)
    expect(dialog.get_by_role("option", name="grinning face", exact=True)).to_be_visible()
    inside_window(bob, dialog)
    bob.snap("picker-small-window")
    flag = dialog.get_by_role("option", name="flag: Japan")
    expect(flag).not_to_be_in_viewport()
    dialog.get_by_role("button", name="Flags").click()
    expect(dialog.get_by_role("option", name="chequered flag")).to_be_in_viewport()
    expect(dialog.get_by_role("combobox")).to_be_focused()
    bob.assert_clean()


def test_the_composers_picker_inserts_at_the_cursor(people: People) -> None:
    """alice types "ab", puts the cursor between, picks 🎉 from the composer's picker: the
    composer holds "a🎉b" with the cursor after 🎉, and sending it sends that text."""
    alice = signed_up(people, "alice")
    alice.composer.fill("ab")
    alice.composer.evaluate("(el) => el.setSelectionRange(1, 1)")
    alice.page.get_by_role("button", name="Insert an emoji").click()
    dialog = alice.page.get_by_role("dialog", name="Insert an emoji")
    dialog.get_by_role("combobox").fill("party popper")
    expect(dialog.get_by_role("option")).to_have_accessible_name("party popper")
    inside_window(alice, dialog)
    alice.snap("composer-picker")
    alice.page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    expect(alice.composer).to_have_value("a🎉b")
    expect(alice.composer).to_be_focused()
    after = len("a🎉".encode("utf-16-le")) // 2  # the textarea counts UTF-16 units
    assert alice.composer.evaluate("(el) => el.selectionStart") == after
    alice.composer.press("Enter")
    expect(alice.message("a🎉b")).to_be_visible()
    alice.assert_clean()


def test_the_arrows_cross_from_one_group_to_the_next_keeping_the_column(
        people: People) -> None:
    """In groups of 3 and 10 emoji, 8 to a row: ↓ from the first group's second lands on the
    next group's second, ↓ under a short last row lands on its last, ↑ goes back by column,
    and ← / → stop at the ends."""
    person = people("alice")
    person.open()
    moves = person.page.evaluate("""async () => {
      const src = [...document.scripts].map((s) => s.src).find((u) => u.includes('main'));
      const { gridMove } = await import(src.replace(/main[.]js.*/, 'emoji.js'));
      const groups = [{ emoji: Array(3).fill(0) }, { emoji: Array(10).fill(0) }];
      const go = (i, key) => gridMove(groups, i, key, 8);
      return [go(1, 'ArrowDown'), go(4, 'ArrowUp'), go(12, 'ArrowUp'), go(4, 'ArrowDown'),
              go(8, 'ArrowDown'), go(12, 'ArrowDown'), go(1, 'ArrowUp'), go(0, 'ArrowLeft'),
              go(12, 'ArrowRight'), go(2, 'ArrowRight')];
    }""")
    assert moves == [4, 1, 4, 12, 12, 12, 1, 0, 12, 3]
    person.assert_clean()
