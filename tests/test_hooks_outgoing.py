"""Outgoing webhooks against a real HTTP server the test starts: signed calls on a trigger word,
retries on 5xx and timeouts, replies posted as the hook, private addresses refused."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from chat.hooks.guard import refusal
from chat.hooks.outgoing import WORKERS, trigger_of
from chat.hooks.store import Hook
from chat_server import ChatApplication
from tests import test_rooms
from tests.apiclient import Api
from tests.helpers import ChatClient, Connect
from tests.test_auth_socket import bearer, signed_up
from tests.test_metrics import sample
from tests.test_rooms import make_room

app = test_rooms.app  # the fixture: each test runs on SQLite and on PostgreSQL

TIMEOUT_S = 10.0


@dataclass
class Script:
    """What the receiver answers, call by call (the last answer repeats), and what it got."""

    answers: list[tuple[int, Any, float]] = field(default_factory=lambda: [(200, None, 0.0)])
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class Receiver(RequestHandler):
    def initialize(self, script: Script) -> None:
        self.script = script

    async def post(self) -> None:
        script = self.script
        script.calls.append((dict(self.request.headers), self.request.body))
        script.arrived.set()
        status, body, delay = script.answers[min(len(script.calls), len(script.answers)) - 1]
        if delay:
            await asyncio.sleep(delay)
        self.set_status(status)
        if body is not None:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))


@pytest.fixture
def receiver(io_loop: Any) -> Iterator[tuple[Script, str]]:
    """A receiving HTTP server on 127.0.0.1 and an ephemeral port: its script and URL."""
    script = Script()
    sock, port = bind_unused_port()
    # Its 500s are what it is told to answer: no access log (it would read as the chat's error).
    server = HTTPServer(Application([(r"/hook", Receiver, {"script": script})],
                                    log_function=lambda handler: None))
    server.add_sockets([sock])
    yield script, f"http://127.0.0.1:{port}/hook"
    server.stop()


async def calls(script: Script, count: int) -> list[tuple[dict[str, str], bytes]]:
    """Wait until the receiver has had `count` calls; them."""
    async def enough() -> None:
        while len(script.calls) < count:
            script.arrived.clear()
            await script.arrived.wait()
    await asyncio.wait_for(enough(), TIMEOUT_S)
    return script.calls


async def room_with_hook(app: ChatApplication, connect: Connect, port: int, url: str,
                         triggers: list[str]) -> tuple[ChatClient, dict[str, Any]]:
    """ann owning room `ops`, her socket in it, and her new outgoing hook `Deployer`."""
    token = await signed_up(app, "ann")
    ann = await connect(**bearer(token))
    await ann.join("ann")
    await make_room(ann, "ops")
    await ann.send({"type": "join", "room": "ops"})
    await ann.recv_type("history")
    made = await Api(port).call("POST", "/api/v1/webhooks", {
        "room": "ops", "name": "Deployer", "kind": "outgoing", "url": url,
        "triggers": triggers}, token=token)
    assert made.status == 201, made.body
    return ann, made.body


async def say(client: ChatClient, text: str) -> dict[str, Any]:
    await client.send({"type": "message", "room": "ops", "text": text})
    return await client.recv_type("message")


def verify(key: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (docs/api.md): HMAC-SHA256 of `timestamp.body`, compared in constant
    time."""
    expected = hmac.new(key.encode(), headers["X-Chat-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Chat-Signature"], "sha256=" + expected)


async def metrics(port: int) -> str:
    return (await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/metrics")).body.decode()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.settings(webhook_allow_private=True)
async def test_a_trigger_word_calls_the_url_signed_and_the_reply_is_posted_as_the_hook(
    app: ChatApplication, connect: Connect, http_port: int, receiver: tuple[Script, str],
) -> None:
    """A message starting with the trigger word is POSTed once with a signature the receiver
    verifies; its JSON `text` answer is posted into the room as the hook, marked `bot`; other
    messages and the reply itself call nothing."""
    script, url = receiver
    script.answers = [(200, {"text": "deploying *main*"}, 0.0)]
    ann, made = await room_with_hook(app, connect, http_port, url, ["!deploy"])
    await say(ann, "nothing to see")
    sent = await say(ann, "!deploy main now")
    [(headers, body)] = await calls(script, 1)
    assert verify(made["signing_key"], headers, body)
    assert not verify(made["signing_key"] + "x", headers, body)
    call = json.loads(body)
    assert (call["text"], call["username"], call["room"], call["id"], call["trigger"]) == (
        "!deploy main now", "ann", "ops", sent["id"], "!deploy")
    reply = await ann.recv_type("message")
    assert (reply["username"], reply["message"], reply["bot"]) == (
        "Deployer", "deploying *main*", True)
    await say(ann, "hey @deployer, status?")  # a mention calls it too
    assert json.loads((await calls(script, 2))[1][1])["trigger"] == "@Deployer"
    await ann.recv_type("message")  # its reply
    await asyncio.sleep(0.3)
    assert len(script.calls) == 2  # the replies called nothing
    assert sample(await metrics(http_port), "chat_webhook_replies_total") == 2


@pytest.mark.gen_test(timeout=30)
@pytest.mark.settings(webhook_allow_private=True, webhook_backoff=0.05, webhook_retries=3)
async def test_a_5xx_is_retried_with_backoff_until_it_succeeds(
    app: ChatApplication, connect: Connect, http_port: int, receiver: tuple[Script, str],
) -> None:
    """Two 500s, then 200: the same signed body arrives three times; two retries counted."""
    script, url = receiver
    script.answers = [(500, None, 0.0), (502, None, 0.0), (200, None, 0.0)]
    ann, made = await room_with_hook(app, connect, http_port, url, ["!go"])
    await say(ann, "!go")
    got = await calls(script, 3)
    assert len({body for _, body in got}) == 1
    assert all(verify(made["signing_key"], headers, body) for headers, body in got)
    await asyncio.sleep(0.3)
    assert len(script.calls) == 3
    text = await metrics(http_port)
    assert sample(text, "chat_webhook_call_retries_total") == 2
    assert sample(text, "chat_webhook_calls_total") == 3


@pytest.mark.gen_test(timeout=30)
@pytest.mark.settings(webhook_allow_private=True, webhook_backoff=0.05, webhook_retries=1,
                      webhook_timeout=0.3)
async def test_a_slow_receiver_times_out_is_retried_and_then_given_up(
    app: ChatApplication, connect: Connect, http_port: int, receiver: tuple[Script, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A receiver slower than --webhook-timeout: tried 1 + --webhook-retries times, then given
    up, counted as a timeout and logged at WARNING; the chat meanwhile answers at once."""
    script, url = receiver
    script.answers = [(200, {"text": "too late"}, 1.0)]
    ann, _ = await room_with_hook(app, connect, http_port, url, ["!slow"])
    await say(ann, "!slow")
    assert (await say(ann, "still chatting"))["message"] == "still chatting"
    await calls(script, 2)
    for _ in range(50):
        text = await metrics(http_port)
        if 'chat_webhook_call_failures_total{reason="timeout"} 1.0' in text:
            break
        await asyncio.sleep(0.1)
    assert sample(text, 'chat_webhook_call_failures_total{reason="timeout"}') == 1
    assert any(r.levelno == logging.WARNING and "after 2 tries" in r.getMessage()
               for r in caplog.records)
    await ann.nothing(1.0)  # no reply posted


@pytest.mark.gen_test(timeout=30)
@pytest.mark.settings(webhook_allow_private=False)
async def test_a_loopback_url_is_refused_counted_and_logged_as_a_warning(
    app: ChatApplication, connect: Connect, http_port: int, receiver: tuple[Script, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without --webhook-allow-private a hook to 127.0.0.1 (or to a name resolving to it) is
    never called: each call is refused at call time, counted, and logged at WARNING, not
    ERROR."""
    script, url = receiver
    ann, _ = await room_with_hook(app, connect, http_port, url, ["!x"])
    await say(ann, "!x")
    for _ in range(50):
        if 'reason="refused_address"} 1.0' in await metrics(http_port):
            break
        await asyncio.sleep(0.1)
    assert sample(await metrics(http_port),
                  'chat_webhook_call_failures_total{reason="refused_address"}') == 1
    refused = [r for r in caplog.records if "loopback" in r.getMessage()]
    assert refused and all(r.levelno == logging.WARNING for r in refused)
    assert script.calls == []


@pytest.mark.parametrize(("text", "trigger"), [
    ("deploy now", "deploy"), ("Deploy now", "deploy"), ("please deploy", None),
    ("hey @ci-bot, build", "@ci-bot"), ("@CI-BOT build", "@ci-bot"),
    ("`@ci-bot` is its name", None), ("```\n@ci-bot build\n```", None),
    ("see https://example.com/@ci-bot", None), ("[@ci-bot](https://example.com)", None),
    ("@ci-botty", None), ("mail@ci-bot", None),
])
def test_a_hook_is_triggered_by_its_word_first_or_a_mention_in_prose(
        text: str, trigger: str | None) -> None:
    """A mention inside code, a link or a URL does not call the hook, as it is no mention."""
    hook = Hook("h1", "outgoing", "general", "ci-bot", "https://example.com/", ("deploy",),
                "key", None, 0)
    assert trigger_of(hook, text) == trigger


@pytest.mark.parametrize(("address", "public"), [
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False),
    ("::ffff:127.0.0.1", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("93.184.215.14", True), ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
])
def test_only_public_addresses_may_be_called(address: str, public: bool) -> None:
    """Loopback, private, link-local (the cloud metadata address), unique-local, mapped and
    shared addresses are refused; public ones are not."""
    assert (refusal(address) is None) == public


def test_localhost_resolves_to_a_refused_address() -> None:
    """`localhost` is checked by what it resolves to, not by its name."""
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", 80)}
    assert addresses and all(refusal(str(a)) is not None for a in addresses)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.settings(webhook_allow_private=True, webhook_queue=1, webhook_timeout=5.0)
async def test_a_full_queue_drops_calls_and_counts_them_and_the_chat_goes_on(
    app: ChatApplication, connect: Connect, http_port: int, receiver: tuple[Script, str],
) -> None:
    """With a receiver taking a second per call, WORKERS calls in flight and --webhook-queue
    waiting, further triggers are dropped and counted; every message is still acknowledged
    at once, and every call not dropped is made."""
    script, url = receiver
    script.answers = [(200, None, 1.0)]
    ann, _ = await room_with_hook(app, connect, http_port, url, ["!x"])
    sent = WORKERS + 1 + 2
    for number in range(sent):
        assert (await say(ann, f"!x {number}"))["message"] == f"!x {number}"
    dropped = sample(await metrics(http_port), "chat_webhook_calls_dropped_total")
    assert dropped >= 1
    await calls(script, sent - int(dropped))
    await asyncio.sleep(0.5)
    assert len(script.calls) == sent - dropped
