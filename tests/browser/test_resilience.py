"""The page through a server restart: a banner, a reconnect, its rooms again, nothing twice."""

from __future__ import annotations

import re
import signal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People, Person, ServerProcess

pytestmark = pytest.mark.browser

RECONNECT_MS = 20_000  # backoff with jitter plus a cold server start, on a shared machine


def reconnected(person: Person) -> None:
    expect(person.page.locator(".banner")).to_have_count(0, timeout=RECONNECT_MS)


def test_pages_rejoin_their_rooms_after_a_crash_without_duplicates(
    people: People, server: ServerProcess,
) -> None:
    """After a kill -9 and a restart the pages reconnect, rejoin, resend, and repeat nothing."""
    alice, bob = people("alice"), people("bob")
    for person in (alice, bob):
        person.allow_ws_failures = True  # refused reconnect attempts while the server is down
        person.open()
        person.join()
        person.join_room("ops")
    alice.say("before 1")
    expect(bob.message("before 1")).to_be_visible()
    bob.say("before 2")
    expect(alice.message("before 2")).to_be_visible()

    # Frozen, the server reads nothing: "in flight" goes out on the old socket and is lost
    # with it, unacknowledged. Then it dies.
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    alice.say("in flight")
    for _ in range(50):
        if any(f.get("text") == "in flight" for f in alice.sent[-1]):
            break
        alice.page.wait_for_timeout(100)
    server.stop(signal.SIGKILL)
    for person in (alice, bob):
        expect(person.page.locator(".banner")).to_contain_text("Connection lost")
    alice.snap("disconnected")
    alice.say("sent while down")  # kept, and sent once the page is back
    expect(alice.page.locator(".message.pending", has_text="sent while down")).to_contain_text(
        "Sending…")

    server.start()  # same port, same history file
    for person in (alice, bob):
        reconnected(person)
    expect(bob.message("sent while down")).to_be_visible(timeout=RECONNECT_MS)
    expect(alice.page.locator(".message.pending")).to_have_count(0)
    bob.say("after 1")
    expect(alice.message("after 1")).to_be_visible()
    expected = ["before 1", "before 2", "in flight", "sent while down", "after 1"]
    assert alice.message_texts() == expected
    assert bob.message_texts() == expected

    # The history outlived the crash: a newcomer to #ops sees all of it, once.
    carol = people("carol")
    carol.open("/#ops")
    carol.join()
    expect(carol.message("after 1")).to_be_visible()
    assert carol.message_texts() == expected

    # #general was rejoined as well: a message there counts as unread for alice.
    bob.open_room("general")
    bob.say("general is back")
    expect(alice.room_button("general").locator(".badge")).to_have_text(re.compile(r"^1"))
    expect(alice.page.locator("#sidebar .people")).to_contain_text("bob")
    # The rejoin on the new socket: the token, and `since` the last message seen in #ops.
    rejoins = [f for f in alice.sent[-1] if f["type"] == "join"]
    assert rejoins[0]["username"] == "alice" and rejoins[0]["token"]
    assert {f["room"]: f.get("since") for f in rejoins} == {"ops": 2, "general": None}
    # The unacknowledged message went out again with the cid it had on the lost socket.
    # (Refused attempts while the server was down opened sockets too: look at every one.)
    in_flight = [next(f for f in sent if f.get("text") == "in flight")
                 for sent in alice.sent if any(f.get("text") == "in flight" for f in sent)]
    assert len(in_flight) >= 2  # on the lost socket, and again on a new one
    assert in_flight[0]["cid"] == in_flight[-1]["cid"]
    for person in (alice, bob, carol):
        person.assert_clean()


def test_messages_after_a_restart_that_lost_history_are_kept(
    people: People, server: ServerProcess,
) -> None:
    """A server that comes back without its history reuses ids: new messages still show."""
    server.stop()
    server.db = ":memory:"
    server.start()
    alice, bob = people("alice"), people("bob")
    for person in (alice, bob):
        person.allow_ws_failures = True
        person.open()
        person.join()
    alice.say("old one")
    alice.say("old two")
    expect(bob.message("old two")).to_be_visible()

    server.stop(signal.SIGKILL)
    expect(bob.page.locator(".banner")).to_be_visible()
    server.start()  # a new, empty history: ids start again at 1
    for person in (alice, bob):
        reconnected(person)
    alice.say("new one")
    alice.say("new two")
    expect(bob.message("new two")).to_be_visible(timeout=RECONNECT_MS)
    assert bob.message_texts() == ["old one", "old two", "new one", "new two"]
    assert alice.message_texts() == ["old one", "old two", "new one", "new two"]
    for person in (alice, bob):
        person.assert_clean()


@pytest.mark.server_args("--rate-limit=2", "--rate-burst=3")
def test_messages_refused_by_the_rate_limit_are_resent_once(people: People) -> None:
    """Over the server's rate limit the page resends what was refused; each message shows once."""
    alice, bob = people("alice"), people("bob")
    for person in (alice, bob):
        person.open()
        person.join()
    sent = [f"burst {i}" for i in range(10)]
    for text in sent:
        alice.say(text)
    expect(alice.page.locator(".message.pending")).to_have_count(0, timeout=RECONNECT_MS)
    expect(bob.page.locator(".message")).to_have_count(len(sent))
    for person in (alice, bob):
        texts = person.message_texts()
        assert sorted(texts) == sorted(sent), texts  # all of them, none twice
        assert len(person.sockets) == 1  # never cut off for abuse
        person.assert_clean()


def test_members_coming_back_after_a_restart_are_not_announced(
    people: People, server: ServerProcess,
) -> None:
    """After a restart the members who were there reconnect without "joined" lines."""
    alice, bob = people("alice"), people("bob")
    for person in (alice, bob):
        person.allow_ws_failures = True
        person.open()
        person.join()
    expect(alice.page.locator(".notice", has_text="bob joined #general")).to_have_count(1)
    bob.say("before")
    expect(alice.message("before")).to_be_visible()
    notices = alice.page.locator(".message-list .notice")
    seen = notices.count()

    server.stop(signal.SIGKILL)
    expect(alice.page.locator(".banner")).to_be_visible()
    server.start()
    for person in (alice, bob):
        reconnected(person)
    bob.say("after")
    expect(alice.message("after")).to_be_visible(timeout=RECONNECT_MS)
    expect(alice.page.locator("#sidebar .people")).to_contain_text("bob")
    expect(alice.page.locator(".notice", has_text="bob joined #general")).to_have_count(1)
    expect(notices).to_have_count(seen)
    # Someone new is still announced.
    carol = people("carol")
    carol.open()
    carol.join()
    expect(alice.page.locator(".notice", has_text="carol joined #general")).to_be_visible()
    for person in (alice, bob, carol):
        person.assert_clean()
