"""With --avatars initials the page asks no host but its own, even for old Gravatar messages."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People, Person, ServerProcess

pytestmark = pytest.mark.browser

EMAIL_LABEL = "Email (optional, only for your Gravatar picture)"
EMAIL_MD5 = hashlib.md5(b"alice@example.org").hexdigest()


def watch(person: Person) -> tuple[list[str], list[str]]:
    """Every request the page makes (page.on("request")) and every frame it receives."""
    requests: list[str] = []
    received: list[str] = []
    person.page.on("request", lambda request: requests.append(request.url))

    def socket(ws: Any) -> None:
        ws.on("framereceived", lambda payload: received.append(str(payload)))

    person.page.on("websocket", socket)
    return requests, received


@pytest.mark.server_args("--avatars", "gravatar")
def test_after_a_switch_to_initials_no_request_leaves_the_chat_server(
        people: People, server: ServerProcess) -> None:
    """Old messages stored with a Gravatar URL, and new ones, show drawn avatars asked of no one."""
    alice = people("alice")
    alice.open()
    alice.join(email="alice@example.org")  # with gravatar the form asks for an email
    alice.say("said before the switch")
    expect(alice.message("said before the switch")).to_be_visible()
    alice.context.close()

    server.stop()
    server.extra = ()  # the default: --avatars initials
    server.start()
    bob = people("bob")
    requests, received = watch(bob)
    bob.open()
    expect(bob.page.get_by_label(EMAIL_LABEL)).to_have_count(0)  # nothing to ask an email for
    bob.join()
    expect(bob.message("said before the switch")).to_be_visible()
    carol = people("carol")
    carol.open()
    carol.join()
    carol.say("said after it")
    expect(bob.message("said after it")).to_be_visible()
    bob.page.wait_for_load_state("networkidle")

    assert requests and all(url.startswith(server.base_url + "/") for url in requests), requests
    assert bob.gravatar_requests == [] and bob.foreign_requests == []
    leaked = [f for f in received if "gravatar.com" in f or EMAIL_MD5 in f]
    assert received and leaked == [], leaked
    sources = bob.page.locator(".message img.avatar").evaluate_all(
        "imgs => imgs.map(i => i.getAttribute('src'))")
    assert len(sources) == 2 and all(src.startswith("data:image/") for src in sources), sources
    bob.assert_clean()
    carol.assert_clean()
