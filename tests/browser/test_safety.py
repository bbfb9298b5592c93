"""Hostile text stays text, and the page talks to no host but its own (and Gravatar, if set)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People

pytestmark = pytest.mark.browser

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_TEXT = ('<script>alert(2)</script><img src=x onerror="alert(3)"> <b>bold</b> '
                '<a href="javascript:alert(4)">click</a> {{ 7*7 }}')


def test_hostile_names_and_messages_show_literally_and_run_nothing(people: People) -> None:
    """Markup in a name or a message shows as typed; no element, script or dialog comes of it."""
    alice = people("alice")
    alice.open()
    alice.join()
    mallory = people("mallory")
    mallory.open()
    mallory.join(username=HOSTILE_NAME)
    joined = alice.page.locator(".notice", has_text=f"{HOSTILE_NAME} joined #general")
    expect(joined).to_be_visible()
    expect(alice.page.locator("#sidebar .people")).to_contain_text(HOSTILE_NAME)

    mallory.say(HOSTILE_TEXT)
    row = alice.message("<script>")
    expect(row.locator(".text")).to_have_text(HOSTILE_TEXT)
    expect(row.locator(".name")).to_have_text(HOSTILE_NAME)

    # A direct message both ways puts the name in the conversation list and the title too.
    alice.sidebar().get_by_role("button", name=f"Direct message {HOSTILE_NAME}").click()
    alice.say(HOSTILE_TEXT)
    mallory.page.locator("#sidebar .dms .conv", has_text="alice").click()
    expect(mallory.message("<script>").locator(".text")).to_have_text(HOSTILE_TEXT)
    expect(mallory.page).to_have_title("@alice · Simple Chat")
    expect(alice.page).to_have_title(f"@{HOSTILE_NAME} · Simple Chat")

    for person in (alice, mallory):
        page = person.page
        assert page.locator("img[src='x']").count() == 0
        assert page.locator(".message b, .message script, .message a").count() == 0
        assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
        assert not any(urlsplit(url).path == "/x" for url in person.requests)
        person.assert_clean()  # no dialog opened, no console or page error


@pytest.mark.server_args("--avatars", "gravatar")
def test_no_request_leaves_the_host_but_for_gravatar(people: People) -> None:
    """With --avatars gravatar, the page loads from its own server and from Gravatar alone."""
    alice = people("alice")
    alice.open()
    alice.join(email="alice@example.org")
    alice.say("a picture https://images.example.net/cat.png and a page http://example.com/")
    expect(alice.message("a picture")).to_be_visible()
    alice.page.wait_for_load_state("networkidle")
    own = [url for url in alice.requests if url.startswith(alice.base_url + "/")]
    assert {urlsplit(url).path for url in own} >= {"/", "/static/style.css", "/static/js/frames.js"}
    others = {urlsplit(url).hostname for url in alice.requests} - {"127.0.0.1"}
    assert others <= {"www.gravatar.com"}, others
    assert alice.gravatar_requests, "the avatar should at least be tried"
    alice.assert_clean()
