"""The page behind a load balancer through its node's death: it resumes on another node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, WebSocket, expect

from tests.browser.conftest import DESKTOP, OUTPUT, Person
from tests.helpers import ChatClient
from tests.serverproc import (
    CRASH_SIGNS,
    Child,
    assert_clean,
    child_env,
    flush_redis,
    free_port,
)

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.subprocess]

T = TypeVar("T")

REDIS_DB = 7  # a database of the session's Redis of this test's own, flushed first
HEARTBEAT_S = 0.5  # --node-heartbeat
NODE_TIMEOUT_S = 2.0  # --node-timeout
# A dead node's users are reaped within node-timeout + node-heartbeat; margin for shared CI.
REAPED_AFTER_S = NODE_TIMEOUT_S + HEARTBEAT_S + 1.5
RECONNECT_MS = 20_000  # backoff with jitter (static/js/connection.js) on a shared machine
WAIT_S = 10.0  # the longest quinn waits for a frame that should come at once


class LoopThread:
    """An asyncio loop in a thread of its own: Playwright's sync API holds this one's."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="failover-loop",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Proxy:
    """A TCP load balancer: each new connection goes to the current backend port.

    While held, new connections wait (accepted, not yet forwarded) until released.
    """

    def __init__(self, backend: int) -> None:
        self.backend = backend
        self.port = 0
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = 0  # connections held right now
        self.routed: list[int] = []  # the backend each forwarded connection went to
        self.links: set[tuple[int, asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def hold(self, backend: int) -> None:
        """From now on connections go to `backend`, once released."""
        self.open.clear()
        self.backend = backend

    async def release(self) -> None:
        self.open.set()

    async def drop(self, backend: int) -> None:
        """Cut every forwarded connection to `backend`, on both sides."""
        for port, client, upstream in list(self.links):
            if port == backend:
                client.transport.abort()
                upstream.transport.abort()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for _, client, upstream in list(self.links):
            client.transport.abort()
            upstream.transport.abort()
        if self.server is not None:
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            self.waiting += 1
            try:
                await self.open.wait()
            finally:
                self.waiting -= 1
            port = self.backend
            try:
                up_reader, upstream = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return  # a backend that is gone: the client sees its connection closed
            self.routed.append(port)
            link = (port, writer, upstream)
            self.links.add(link)
            try:
                await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
            finally:
                self.links.discard(link)
        finally:
            for side in (writer, upstream):
                if side is not None:
                    side.close()
                    with contextlib.suppress(Exception):
                        await side.wait_closed()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy src to dst until either ends; then close dst, which ends the other direction too."""
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.close()


class Listener:
    """A ChatClient whose every frame is collected by a task on the loop thread."""

    def __init__(self, runner: LoopThread, url: str) -> None:
        self.runner = runner
        self.frames: list[dict[str, Any]] = []
        self.client: ChatClient = runner.run(ChatClient.connect(url))
        self.task = asyncio.run_coroutine_threadsafe(self._pump(), runner.loop)

    async def _pump(self) -> None:
        while (text := await self.client.conn.read_message()) is not None:
            self.frames.append(json.loads(text))

    def send(self, frame: dict[str, Any]) -> None:
        self.runner.run(self.client.send(frame))

    def wait(self, match: Callable[[dict[str, Any]], bool], what: str,
             timeout: float = WAIT_S, start: int = 0) -> tuple[int, dict[str, Any]]:
        """(index, frame) of the first frame from `start` on that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for at in range(start, len(self.frames)):
                if match(self.frames[at]):
                    return at, self.frames[at]
            assert time.monotonic() < deadline, f"no {what} in {timeout} s: {self.frames}"
            time.sleep(0.05)

    def post(self, text: str) -> dict[str, Any]:
        """Posts to general; the acknowledgement."""
        self.send({"type": "message", "room": "general", "text": text, "cid": text})
        return self.wait(lambda f: f.get("type") == "message" and f.get("cid") == text,
                         f"acknowledgement of {text!r}")[1]

    def close(self) -> None:
        self.runner.run(self._close())

    async def _close(self) -> None:
        self.client.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(self.task), 5)


class Node:
    """One chat_server.py of the cluster, on its own port."""

    def __init__(self, name: str, redis_url: str, db_url: str, folder: Path) -> None:
        self.name = name
        self.port = free_port()
        self.child = Child(
            [f"--port={self.port}", f"--broker={redis_url}", f"--db={db_url}",
             f"--node-heartbeat={HEARTBEAT_S}", f"--node-timeout={NODE_TIMEOUT_S}"],
            child_env(), folder / f"node-{name}.log")


@pytest.fixture
def runner() -> Iterator[LoopThread]:
    """The loop the proxy and quinn's client run on; stopped after the test."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def nodes(redis_server: str, postgres_url: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    """Nodes A and B of one chat on a flushed Redis db and a PostgreSQL schema of the test's
    own; both killed after the test."""
    url = f"{redis_server.rsplit('/', 1)[0]}/{REDIS_DB}"
    flush_redis(url)
    made: list[Node] = []
    try:
        for name in ("a", "b"):
            made.append(Node(name, url, postgres_url, tmp_path))
        for node in made:
            node.child.wait_ready(node.port)
        yield made[0], made[1]
    finally:
        for node in made:
            node.child.kill()


@pytest.fixture
def proxy(runner: LoopThread, nodes: tuple[Node, Node]) -> Iterator[Proxy]:
    """The load balancer, sending everything to node A for now; closed after the test."""
    balancer = Proxy(nodes[0].port)
    runner.run(balancer.start())
    yield balancer
    runner.run(balancer.close())


@pytest.fixture
def pat(browser: Browser, proxy: Proxy, request: pytest.FixtureRequest) -> Iterator[Person]:
    """Pat's page, opened through the proxy; its picture is saved after the test."""
    context = browser.new_context(viewport=DESKTOP)
    person = Person("pat", context, f"http://127.0.0.1:{proxy.port}")
    person.folder = OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    yield person
    with contextlib.suppress(Exception):  # a screenshot is a record, not a check
        person.screenshot(person.folder)
    context.close()


# Whether the page gets through to B before or after the cluster reaps dead A's users (pat
# leaves, and the page's token means nothing any more): the balancer holds it until then.
@pytest.mark.parametrize("reaped_first", [False, True], ids=["before-reap", "after-reap"])
def test_the_page_resumes_on_another_node_when_its_node_dies(
    pat: Person, proxy: Proxy, nodes: tuple[Node, Node], runner: LoopThread, reaped_first: bool,
) -> None:
    """Behind a balancer, a page whose node is killed resumes on the other, missing nothing."""
    a, b = nodes
    received: list[list[dict[str, Any]]] = []  # what each of the page's sockets was sent

    def record(ws: WebSocket) -> None:
        frames: list[dict[str, Any]] = []
        received.append(frames)
        ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    pat.page.on("websocket", record)
    pat.allow_ws_failures = True
    pat.open()
    pat.join()

    quinn = Listener(runner, f"ws://127.0.0.1:{b.port}/ws")
    try:
        quinn.send({"type": "join", "username": "quinn", "room": "general"})
        quinn.wait(lambda f: f.get("type") == "welcome", "welcome")
        first = quinn.post("m1 from quinn")
        expect(pat.message("m1 from quinn")).to_be_visible()
        assert set(proxy.routed) == {a.port}

        # The balancer sends new connections to B (held back for now), A dies, and its
        # connections through the balancer are cut: the page is left reconnecting.
        runner.run(proxy.hold(b.port))
        a.child.proc.kill()
        a.child.proc.wait(5)
        killed = time.monotonic()
        runner.run(proxy.drop(a.port))
        expect(pat.page.locator(".banner")).to_contain_text("Connection lost")
        missed = [quinn.post("m2 from quinn"), quinn.post("m3 from quinn")]
        deadline = time.monotonic() + RECONNECT_MS / 1000
        while proxy.waiting == 0:  # the page's next attempt is at the balancer
            assert time.monotonic() < deadline, "the page never tried to reconnect"
            time.sleep(0.05)
        if reaped_first:
            quinn.wait(lambda f: f.get("type") == "leave" and f.get("username") == "pat",
                       "pat's leave", timeout=REAPED_AFTER_S + 5)
        runner.run(proxy.release())

        expect(pat.page.locator(".banner")).to_have_count(0, timeout=RECONNECT_MS)
        expect(pat.message("m3 from quinn")).to_be_visible(timeout=RECONNECT_MS)
        assert proxy.routed[-1] == b.port
        # The rejoin carried the token and `since` m1. The new socket was sent m2 and m3 (by
        # general's feed before the join, or in the join's replay), and no message twice.
        after = received[-1]
        for _ in range(100):  # Playwright delivers frame events only while it is called
            if any(f["type"] == "history" for f in after):
                break
            pat.page.wait_for_timeout(100)
        else:
            raise AssertionError(f"no reply to the rejoin: {after}")
        rejoin = next(f for f in pat.sent[-1] if f["type"] == "join")
        assert rejoin["username"] == "pat" and rejoin["token"], rejoin
        assert (rejoin["room"], rejoin.get("since")) == ("general", first["id"]), rejoin
        ids = [f["id"] for f in after if f["type"] == "message"] + [
            m["id"] for f in after if f["type"] == "history" for m in f["messages"]]
        assert len(ids) == len(set(ids)) and {m["id"] for m in missed} <= set(ids), after
        # Typed on the page after the reconnect: it reaches quinn on B.
        pat.say("pat is back")
        quinn.wait(lambda f: f.get("type") == "message" and f.get("username") == "pat"
                   and f.get("message") == "pat is back", "pat's message")
        expect(pat.page.locator(".message.pending")).to_have_count(0)

        # Once A's users are surely reaped, pat (alive on B) is still in general's presence
        # for quinn, and can still post.
        time.sleep(max(0.0, killed + REAPED_AFTER_S - time.monotonic()))
        start = len(quinn.frames)
        quinn.send({"type": "join", "username": "quinn", "room": "general"})
        _, presence = quinn.wait(lambda f: f.get("type") == "presence", "presence", start=start)
        notices = [(f["type"], f["username"]) for f in quinn.frames
                   if f.get("type") in ("join", "leave") and f.get("username") == "pat"]
        present = {u["username"] for u in presence["users"]}
        assert present == {"pat", "quinn"}, (presence, notices)
        # Reaped or not, pat's last notice is a join; reaped first, it left and came back.
        assert notices in ([], [("leave", "pat"), ("join", "pat")]), notices
        assert not reaped_first or notices, notices
        pat.say("still here")
        quinn.wait(lambda f: f.get("type") == "message" and f.get("message") == "still here",
                   "pat's second message")
        expect(pat.page.locator(".message.pending")).to_have_count(0)
    finally:
        quinn.close()

    expected = ["m1 from quinn", "m2 from quinn", "m3 from quinn", "pat is back", "still here"]
    expect(pat.message("still here")).to_be_visible()
    assert pat.message_texts() == expected  # each once, in order
    pat.assert_clean()  # every socket was ws://<balancer>/ws
    assert len(pat.sockets) == 2, pat.sockets
    for sign in CRASH_SIGNS:
        assert sign not in a.child.stderr, a.child.stderr
    assert_clean(b.child.stderr)
