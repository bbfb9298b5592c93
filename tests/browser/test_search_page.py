"""Searching on the page (issue 16): the search view's results with their hits marked, its
filters and pages, a result opened in its conversation through older history, and message
links: copied, and opened on another page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.conftest import PHONE, People, Person, ServerProcess
from tests.browser.test_accounts_page import create_account
from tests.browser.test_layout import no_sideways_scroll
from tests.browser.test_people_page import signed_in
from tests.browser.test_rooms_page import create_room, signed_up

pytestmark = pytest.mark.browser

LINK = re.compile(r"^http://127\.0\.0\.1:\d+/#/room/general/(\d+)$")


# Posts `texts` to general from a socket of the page's own (a guest named `name`), faster than
# typing them; resolves with how many were acknowledged.
SEED = """async ([url, name, texts]) => {
  const ws = new WebSocket(url);
  await new Promise((ok) => ws.addEventListener('open', ok));
  let acked = 0;
  const done = new Promise((ok) => ws.addEventListener('message', (e) => {
    const f = JSON.parse(e.data);
    if (f.type === 'welcome') texts.forEach((text, n) =>
      ws.send(JSON.stringify({type: 'message', room: 'general', text, cid: 'seed' + n})));
    if (f.type === 'message' && typeof f.cid === 'string' && ++acked === texts.length) ok();
  }));
  ws.send(JSON.stringify({type: 'join', room: 'general', username: name}));
  await done;
  ws.close();
  return acked;
}"""


def search(person: Person, query: str) -> Locator:
    """Opens the search view with Ctrl+K, searches `query`: the view."""
    person.page.keyboard.press("Control+k")
    view = person.page.get_by_role("region", name="Search messages")
    field = view.get_by_label("Search messages", exact=True)
    expect(field).to_be_focused()
    field.fill(query)
    field.press("Enter")
    return view


def hits(view: Locator) -> Locator:
    return view.locator(".search-hit")


def flashed(row: Locator) -> None:
    """The row was highlighted as the one jumped to (its flash animation ran)."""
    row.page.wait_for_function(
        "el => el.getAnimations().length > 0", arg=row.element_handle(), polling="raf")


def test_search_finds_words_and_prefixes_marks_the_hits_and_filters_narrow(
    people: People,
) -> None:
    """A word finds only messages with that word, `word*` those with a word starting so; the
    hits are <mark>ed; the room, person and date filters narrow; nothing found says so."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.say("deploy the release tonight")
    alice.say("the deployment failed on staging")
    alice.say("lunch at noon")
    alice.join_room("ops")
    expect(alice.room_button("ops")).to_be_visible()
    alice.say("ops will deploy on friday")
    bob = people("bob")
    bob.open()
    bob.join()
    bob.say("I can deploy too")

    view = search(alice, "deploy")
    expect(hits(view)).to_have_count(3)
    expect(view.locator(".search-excerpt mark")).to_have_text(["deploy"] * 3)
    expect(view).not_to_contain_text("deployment")

    view.get_by_label("Search messages", exact=True).fill("deplo*")
    view.get_by_role("button", name="Search", exact=True).click()
    expect(hits(view)).to_have_count(4)
    expect(view.locator(".search-excerpt mark", has_text="deployment")).to_have_count(1)
    expect(view.locator(".search-where", has_text="#ops")).to_have_count(1)

    view.get_by_label("In", exact=True).select_option("room:general")
    view.get_by_role("button", name="Search", exact=True).click()
    expect(hits(view)).to_have_count(3)
    expect(view.locator(".search-where", has_text="#ops")).to_have_count(0)

    view.get_by_label("From", exact=True).fill("bob")
    view.get_by_role("button", name="Search", exact=True).click()
    expect(hits(view)).to_have_count(1)
    expect(hits(view)).to_contain_text("I can deploy too")
    expect(hits(view).locator(".name")).to_have_text("bob")

    view.get_by_label("From", exact=True).fill("")
    view.get_by_label("After", exact=True).fill("2999-01-01")
    view.get_by_role("button", name="Search", exact=True).click()
    expect(hits(view)).to_have_count(0)
    expect(view.locator(".search-none")).to_contain_text("No messages match “deplo*”")
    alice.snap("search")

    alice.page.keyboard.press("Escape")
    expect(view).to_have_count(0)
    expect(alice.composer).to_be_focused()

    # A result in a public room bob is not in: opening it joins the room and shows it there.
    view = search(bob, "friday")
    hits(view).click()
    expect(bob.room_button("ops")).to_be_visible()
    expect(bob.page.locator(".topbar .where")).to_have_text("#ops")
    expect(bob.message("ops will deploy on friday")).to_be_in_viewport()
    flashed(bob.message("ops will deploy on friday"))
    expect(bob.page.locator(".jump-notice")).to_have_count(0)
    alice.assert_clean()
    bob.assert_clean()


@pytest.mark.server_args("--history-on-join", "5")
def test_a_result_older_than_the_history_shown_opens_in_its_conversation(
    people: People,
) -> None:
    """bob, shown only the last five messages, opens a search result from long before them:
    the older history is loaded and the message is scrolled into view and highlighted; the
    results come a page at a time."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.say("the needle is in the haystack")
    for n in range(12):
        alice.say(f"hay {n} needles")
    expect(alice.message("hay 11")).to_be_visible()

    bob = people("bob")
    bob.open()
    bob.join()
    expect(bob.message("hay 11")).to_be_visible()
    expect(bob.message("the needle")).to_have_count(0)  # older than the join's five
    bob.page.locator(".messages").click()
    bob.page.keyboard.press("/")  # "/" opens the search when not typing
    view = bob.page.get_by_role("region", name="Search messages")
    view.get_by_label("Search messages", exact=True).fill("needle*")
    view.get_by_label("Search messages", exact=True).press("Enter")
    expect(hits(view)).to_have_count(13)
    target = hits(view).filter(has_text="the needle is in")
    expect(target.locator("mark")).to_have_text("needle")
    bob.snap("results")
    target.click()

    expect(view).to_have_count(0)
    row = bob.message("the needle is in the haystack")
    expect(row).to_be_in_viewport()
    flashed(row)
    bob.snap("jumped")
    pages = [f for frames in bob.sent for f in frames if f.get("type") == "history"]
    assert pages and pages[-1]["room"] == "general" and pages[-1]["limit"] == 200, pages
    bob.assert_clean()


@pytest.mark.server_args("--search-page-max", "2")
def test_more_results_come_a_page_at_a_time(people: People) -> None:
    """With pages of two, "More results" adds the next page below the first, until none is left."""
    alice = people("alice")
    alice.open()
    alice.join()
    for n in range(5):
        alice.say(f"paged result {n}")
    expect(alice.message("paged result 4")).to_be_visible()
    view = search(alice, "paged")
    expect(hits(view)).to_have_count(2)
    view.get_by_role("button", name="More results").click()
    expect(hits(view)).to_have_count(4)
    view.get_by_role("button", name="More results").click()
    expect(hits(view)).to_have_count(5)
    expect(view.get_by_role("button", name="More results")).to_have_count(0)
    texts = [t.strip() for t in view.locator(".search-excerpt").all_inner_texts()]
    assert sorted(texts) == [f"paged result {n}" for n in range(5)], texts
    alice.assert_clean()


def test_a_private_room_stays_out_of_a_non_members_search_and_links(people: People) -> None:
    """alice's private room's message is found by her, not by bob: his search shows nothing,
    and its link, opened on his page, says the message is not available."""
    alice = signed_up(people, "alice")
    alice.context.grant_permissions(["clipboard-read", "clipboard-write"])
    create_room(alice, "secret", private=True)
    alice.say("the classified launch plans")
    view = search(alice, "classified")
    expect(hits(view)).to_have_count(1)
    alice.page.keyboard.press("Escape")
    row = alice.message("classified launch")
    row.hover()
    row.get_by_role("button", name="Copy a link to the message").click()
    expect(alice.page.locator(".copy-link")).to_contain_text("Link copied")
    link = alice.page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/#/room/secret/\d+", link), link

    bob = signed_up(people, "bob")
    view = search(bob, "classified")
    expect(view.locator(".search-none")).to_be_visible()
    expect(hits(view)).to_have_count(0)
    expect(bob.page.locator("body")).not_to_contain_text("launch plans")
    bob.page.goto(link)
    expect(bob.page.locator(".jump-notice")).to_contain_text("not available")
    expect(bob.page.locator("body")).not_to_contain_text("launch plans")
    bob.snap("not-available")
    alice.assert_clean()
    bob.assert_clean()


@pytest.mark.server_args("--history-on-join", "3")
def test_a_copied_link_opens_the_message_in_context_on_another_page(people: People) -> None:
    """The copied link is on the clipboard; opened on a new page that must first join, it
    shows the message (older than that page's history) scrolled into view and highlighted."""
    alice = people("alice")
    alice.context.grant_permissions(["clipboard-read", "clipboard-write"])
    alice.open()
    alice.join()
    alice.say("the message worth linking")
    for n in range(8):
        alice.say(f"later {n}")
    row = alice.message("worth linking")
    row.hover()
    row.get_by_role("button", name="Copy a link to the message").click()
    expect(alice.page.locator(".copy-link")).to_contain_text("Link copied")
    link = alice.page.evaluate("navigator.clipboard.readText()")
    found = LINK.match(link)
    assert found, link
    alice.snap("copied")

    bob = people("bob")
    bob.open(link.removeprefix(bob.base_url))
    bob.join()
    target = bob.message("the message worth linking")
    expect(target).to_be_in_viewport()
    flashed(target)
    assert target.get_attribute("data-key") == "0:" + found.group(1)
    expect(bob.page).to_have_url(re.compile(r"/#general$"))  # taken up: a reload shows the room
    alice.assert_clean()
    bob.assert_clean()


def test_without_the_clipboard_the_link_is_shown_selected_to_copy(people: People) -> None:
    """Where the page may not write the clipboard (plain http from another host), the link
    is shown in a field, selected, to copy by hand."""
    alice = people("alice")
    alice.context.add_init_script(
        "Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    alice.open()
    alice.join()
    alice.say("copy me by hand")
    row = alice.message("copy me by hand")
    row.hover()
    row.get_by_role("button", name="Copy a link to the message").click()
    field = alice.page.get_by_role("textbox", name="Link to the message")
    expect(field).to_have_value(LINK)
    expect(field).to_be_focused()
    selected = field.evaluate("el => el.value.slice(el.selectionStart, el.selectionEnd)")
    assert selected == field.input_value()
    alice.snap("fallback")
    alice.assert_clean()


def test_hostile_text_in_an_excerpt_stays_text(people: People, server: ServerProcess) -> None:
    """An excerpt holding HTML is shown as its characters: no element from it, no script run;
    a search while disconnected says so."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.say('<img src=x onerror="alert(1)"> boom <b>bold</b>')
    expect(alice.message("boom")).to_be_visible()
    view = search(alice, "boom")
    excerpt = view.locator(".search-excerpt")
    expect(excerpt).to_contain_text('<img src=x onerror="alert(1)"> boom <b>bold</b>')
    expect(excerpt.locator("img, b")).to_have_count(0)
    expect(excerpt.locator("mark")).to_have_text(["boom"])

    alice.allow_ws_failures = True
    server.stop()
    expect(alice.page.locator(".banner")).to_be_visible()
    view.get_by_role("button", name="Search", exact=True).click()
    expect(view.locator(".search-error")).to_contain_text("Not connected")
    alice.assert_clean()


@pytest.mark.server_args("--search-per-minute", "1")
def test_a_rate_limited_search_says_so(people: People) -> None:
    """Past the searches allowed a minute (a burst of five), the view says to wait."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.say("often searched")
    view = search(alice, "often")
    button = view.get_by_role("button", name="Search", exact=True)
    error = view.locator(".search-error")
    for _ in range(8):
        expect(hits(view).or_(error)).not_to_have_count(0)
        if error.count():
            break
        button.click()
    expect(error).to_contain_text("Too many searches")
    alice.assert_clean()


def test_a_direct_message_is_found_and_linked_only_by_its_two_people(
    people: People, server: ServerProcess,
) -> None:
    """bob finds alice's direct message and opens it in their conversation; its link opens
    it for bob, and for carol, who is not one of the two, says it is not available."""
    for name in ("alice", "bob", "carol"):
        create_account(server, name)
    alice = signed_in(people, "alice")
    alice.context.grant_permissions(["clipboard-read", "clipboard-write"])
    side = alice.sidebar()
    side.get_by_role("button", name="New message").click()
    side.get_by_role("combobox", name=re.compile("^To")).fill("bob")
    side.get_by_role("option", name=re.compile("bob")).click()
    alice.say("the pizza order is ready")
    row = alice.message("pizza order")
    row.hover()
    row.get_by_role("button", name="Copy a link to the message").click()
    expect(alice.page.locator(".copy-link")).to_contain_text("Link copied")
    link = alice.page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/#/dm/alice/bob/\d+", link), link

    bob = signed_in(people, "bob")
    bob.open_room("general")
    view = search(bob, "pizza")
    expect(hits(view)).to_have_count(1)
    expect(hits(view).locator(".search-where")).to_have_text("@alice")
    hits(view).click()
    expect(bob.page.locator(".topbar .where")).to_have_text("@alice")
    expect(bob.message("pizza order")).to_be_in_viewport()
    bob.open_room("general")
    bob.page.goto(link)
    expect(bob.page.locator(".topbar .where")).to_have_text("@alice")
    expect(bob.message("pizza order")).to_be_in_viewport()

    carol = signed_in(people, "carol")
    view = search(carol, "pizza")
    expect(view.locator(".search-none")).to_be_visible()
    expect(hits(view)).to_have_count(0)
    carol.page.goto(link)
    expect(carol.page.locator(".jump-notice")).to_contain_text("not available")
    expect(carol.page.locator("body")).not_to_contain_text("pizza order")
    for person in (alice, bob, carol):
        person.assert_clean()


def test_the_search_view_fits_a_360_px_screen(people: People) -> None:
    """On a phone the search button opens the view; the form and a result fit the width."""
    alice = people("alice", viewport=PHONE)
    alice.open()
    alice.join()
    alice.say("a search on a small screen with a rather long message to wrap around")
    alice.page.get_by_role("button", name="Search messages (Ctrl+K)").click()
    view = alice.page.get_by_role("region", name="Search messages")
    view.get_by_label("Search messages", exact=True).fill("small")
    view.get_by_role("button", name="Search", exact=True).click()
    expect(hits(view)).to_have_count(1)
    no_sideways_scroll(alice)
    alice.snap("phone-search")
    alice.assert_clean()


@pytest.mark.server_args("--history-on-join", "5", "--rate-limit", "0")
def test_a_result_pages_back_through_long_history_to_its_message(people: People) -> None:
    """A result 450 messages back is reached a page of 200 at a time, then scrolled into view
    and highlighted."""
    seeder = people("seeder")
    seeder.open()
    url = seeder.base_url.replace("http://", "ws://", 1) + "/ws"
    texts = ["the oldest needle of all"] + [f"straw {n}" for n in range(450)]
    assert seeder.page.evaluate(SEED, [url, "seeder", texts]) == len(texts)

    bob = people("bob")
    bob.open()
    bob.join()
    expect(bob.message("straw 449")).to_be_visible()
    view = search(bob, "needle")
    hits(view).click()
    row = bob.message("the oldest needle of all")
    expect(row).to_be_in_viewport()
    flashed(row)
    pages = [f for frames in bob.sent for f in frames if f.get("type") == "history"]
    assert [f.get("limit") for f in pages] == [200, 200, 200], pages
    expect(bob.page.locator(".jump-notice")).to_have_count(0)
    bob.assert_clean()


def test_a_result_deleted_after_the_search_opens_to_a_not_available_note(
    people: People,
) -> None:
    """alice deletes a message bob's search found: his click on the result shows the room and
    a note that the message is not available, without its text."""
    alice = people("alice")
    alice.open()
    alice.join()
    alice.say("first words")
    alice.say("a regrettable remark")
    alice.say("later words")
    bob = people("bob")
    bob.open()
    bob.join()
    view = search(bob, "regrettable")
    expect(hits(view)).to_have_count(1)
    row = alice.message("regrettable")
    row.hover()
    row.get_by_role("button", name="Delete your message").click()
    expect(alice.message("regrettable")).to_have_count(0)
    hits(view).click()
    expect(bob.page.locator(".jump-notice")).to_contain_text("not available")
    expect(bob.message("later words")).to_be_visible()
    expect(bob.message("regrettable")).to_have_count(0)
    bob.page.get_by_role("button", name="Dismiss").click()
    expect(bob.page.locator(".jump-notice")).to_have_count(0)
    alice.assert_clean()
    bob.assert_clean()
