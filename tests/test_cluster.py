"""Several chat_server.py nodes on one Redis and one PostgreSQL behave as one chat, through node,
Redis and PostgreSQL deaths."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tornado.httpserver import HTTPServer

from chat.broker.redis import RedisBroker
from chat.config import Settings
from chat.node.faults import ENV as FAULT_ENV
from chat.roster.redis import RedisRoster
from chat.store.postgres import PostgresStore
from chat.store.postgres_notify import APPLICATION_NAME
from chat_server import ChatApplication, make_app
from tests.helpers import ChatClient, stop
from tests.pgserver import PostgresCluster, postgres_cluster
from tests.serverproc import (
    Child,
    OwnRedis,
    Spawn,
    WsConnect,
    assert_clean,
    assert_one_line_error,
    flush_redis,
    free_port,
    redis_command,
    run,
)
from tests.test_roster import stop_beating

pytestmark = [pytest.mark.subprocess, pytest.mark.redis, pytest.mark.postgres]

HEARTBEAT_S = 0.5  # --node-heartbeat
NODE_TIMEOUT_S = 2.0  # --node-timeout
# A killed node's users are gone within node-timeout + node-heartbeat; the rest is margin for a
# shared CI machine.
DEATH_BOUND_S = 6.0
RECOVERY_S = 10.0  # Redis back: every node healthy again within this
WAIT_S = 5.0  # the longest a test waits for a frame that should come at once
# Frames that may arrive at any time: other users' notices, and presence lists a node resends
# once its broker is back.
NOTICES = frozenset({"join", "leave", "typing", "presence"})

_db_numbers = itertools.count()


@dataclass
class Node:
    """One chat_server.py of a cluster."""

    port: int
    child: Child


def node_args(port: int, redis_url: str, db_url: str) -> list[str]:
    """The command line of one cluster node: the broker in Redis, the history in PostgreSQL."""
    return [
        f"--port={port}",
        f"--broker={redis_url}",
        f"--db={db_url}",
        f"--node-heartbeat={HEARTBEAT_S}",
        f"--node-timeout={NODE_TIMEOUT_S}",
        "--rate-limit=0",  # the tests post in bursts; rate limiting has its own tests
    ]


class Cluster:
    """Starts nodes for a test; after it, no node's stderr may show a crash or an error line."""

    def __init__(self, spawn: Spawn, redis_url: str, db_url: str) -> None:
        self.spawn = spawn
        self.redis_url = redis_url
        self.db_url = db_url
        self.started: list[Node] = []
        self.allowed_errors: re.Pattern[str] | None = None  # ERROR lines the test expects

    def __call__(self, count: int = 2, redis_url: str | None = None, db_url: str | None = None,
                 **env: str) -> list[Node]:
        """`count` nodes, started together, once each answers /healthz (`env`: theirs)."""
        nodes = []
        for _ in range(count):
            port = free_port()
            args = node_args(port, redis_url or self.redis_url, db_url or self.db_url)
            nodes.append(Node(port, self.spawn(*args, **env)))
        for node in nodes:
            node.child.wait_ready(node.port)
        self.started.extend(nodes)
        return nodes

    def check(self) -> None:
        for node in self.started:
            if node.child.proc.poll() is None or node.child.proc.returncode >= 0:
                allowed = self.allowed_errors
                assert_clean("\n".join(  # a node the test killed is not checked
                    line for line in node.child.stderr.splitlines()
                    if allowed is None or not allowed.search(line)))


@pytest.fixture
def cluster(spawn: Spawn, redis_db: str, postgres_url: str) -> Iterator[Cluster]:
    """Start cluster nodes (on the test's Redis db and PostgreSQL schema unless told); their
    stderr is checked after."""
    nodes = Cluster(spawn, redis_db, postgres_url)
    yield nodes
    nodes.check()


@pytest.fixture
def redis_db(redis_server: str) -> str:
    """A database of the session's Redis (1-15, in turn), flushed for this test: its URL."""
    url = f"{redis_server.rsplit('/', 1)[0]}/{1 + next(_db_numbers) % 15}"
    flush_redis(url)
    return url


def health(port: int) -> tuple[int | None, dict[str, Any]]:
    """GET /healthz: (status, JSON body); (None, {}) if nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        body = response.read()
    except OSError:
        return None, {}
    finally:
        conn.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, {}


async def wait_health(nodes: list[Node], status: int, broker: str,
                      timeout: float = RECOVERY_S) -> None:
    """Poll /healthz on every node until each answers `status` with "broker": `broker`."""
    deadline = time.monotonic() + timeout
    while True:
        seen = [await asyncio.to_thread(health, node.port) for node in nodes]
        if all(code == status and body.get("broker") == broker for code, body in seen):
            return
        assert time.monotonic() < deadline, f"wanted {status} broker={broker}, got {seen}"
        await asyncio.sleep(0.1)


def has(key: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    """A match for frames_until: the frame's `key` is `value`."""
    return lambda frame: frame.get(key) == value


async def frames_until(client: ChatClient, match: Callable[[dict[str, Any]], bool],
                       timeout: float = WAIT_S, *,
                       allow_timeout: bool = False) -> list[dict[str, Any]]:
    """Every frame received up to and including the first one that `match`es (or, with
    `allow_timeout`, every frame received within `timeout`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    frames: list[dict[str, Any]] = []
    while True:
        try:
            frame = await client.recv(max(0.01, deadline - loop.time()))
        except TimeoutError:
            if allow_timeout:
                return frames
            raise AssertionError(f"no matching frame in {timeout} s; got {frames}") from None
        assert frame is not None, f"closed; got {frames}"
        frames.append(frame)
        if match(frame):
            return frames


async def expect(client: ChatClient, kind: str, timeout: float = WAIT_S,
                 **fields: Any) -> dict[str, Any]:
    """The next frame of type `kind`, with `fields`; only notices of other types may precede it."""
    frames = await frames_until(client, lambda frame: frame.get("type") == kind, timeout)
    *before, frame = frames
    assert all(f.get("type") in NOTICES for f in before), f"before the {kind!r}: {before}"
    assert {key: frame.get(key) for key in fields} == fields, frame
    return frame


async def enter(client: ChatClient, username: str, room: str,
                **extra: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Join `room`: the welcome, presence and history replies."""
    await client.send({"type": "join", "username": username, "room": room, **extra})
    welcome = await expect(client, "welcome", username=username)
    presence = await expect(client, "presence", room=room)
    history = await expect(client, "history", room=room)
    return welcome, presence, history


def names(presence: dict[str, Any]) -> set[str]:
    return {user["username"] for user in presence["users"]}


async def post(client: ChatClient, room: str, text: str, cid: str) -> dict[str, Any]:
    """Post `text` and return the acknowledgement (the sender's own copy)."""
    await client.send({"type": "message", "room": room, "text": text, "cid": cid})
    return await expect(client, "message", room=room, message=text, cid=cid)


@pytest.mark.gen_test(timeout=60)
async def test_messages_cross_nodes_both_ways(cluster: Cluster, ws: WsConnect) -> None:
    """A message posted on either node reaches both with one id, one more than the room's last."""
    a, b = cluster()
    await wait_health([a, b], 200, "up", timeout=WAIT_S)
    alice, bob = await ws(a.port), await ws(b.port)
    for client, name in ((alice, "alice"), (bob, "bob")):
        await enter(client, name, "lobby")
        await enter(client, name, "annex")

    ids = []
    for sender, name, text in ((alice, "alice", "hello from a"), (bob, "bob", "hello from b"),
                               (alice, "alice", "again from a")):
        await sender.send({"type": "message", "room": "lobby", "text": text, "cid": text})
        got = {who: await expect(client, "message", room="lobby", username=name, message=text)
               for who, client in (("alice", alice), ("bob", bob))}
        assert got["alice"]["id"] == got["bob"]["id"], got
        assert got[name]["cid"] == text, got
        ids.append(got["alice"]["id"])
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]

    ack = await post(bob, "annex", "elsewhere", "x1")  # ids are per room
    assert ack["id"] == ids[0]
    assert (await expect(alice, "message", room="annex", message="elsewhere"))["id"] == ack["id"]


@pytest.mark.gen_test(timeout=60)
async def test_presence_and_join_leave_notices_span_the_nodes(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """A joiner's presence lists the room's users on every node; join and leave notices cross."""
    a, b = cluster()
    alice, bob, carol, dave = await ws(a.port), await ws(b.port), await ws(a.port), await ws(b.port)

    _, presence, _ = await enter(alice, "alice", "hall")
    assert names(presence) == {"alice"}
    _, presence, _ = await enter(bob, "bob", "hall")
    assert names(presence) == {"alice", "bob"}
    assert all(set(user) >= {"username", "avatar"} for user in presence["users"]), presence
    notice = await expect(alice, "join", room="hall", username="bob")
    assert notice["avatar"].startswith("data:image/svg+xml,"), notice  # --avatars initials

    _, presence, _ = await enter(carol, "carol", "hall")
    assert names(presence) == {"alice", "bob", "carol"}
    await expect(alice, "join", room="hall", username="carol")
    await expect(bob, "join", room="hall", username="carol")
    # Pages of members (a big room's presence lists only the first) read every node's.
    await bob.send({"type": "members", "room": "hall", "limit": 2})
    page = await expect(bob, "members", room="hall", count=3, more=True)
    await bob.send({"type": "members", "room": "hall", "after": page["users"][-1]["username"]})
    rest = await expect(bob, "members", room="hall", count=3, more=False)
    assert [u["username"] for u in page["users"] + rest["users"]] == ["alice", "bob", "carol"]

    await bob.send({"type": "leave", "room": "hall"})
    await expect(bob, "leave", room="hall", username="bob")  # the acknowledgement
    await expect(alice, "leave", room="hall", username="bob")
    await expect(carol, "leave", room="hall", username="bob")

    carol.close()
    await expect(alice, "leave", room="hall", username="carol")

    _, presence, _ = await enter(dave, "dave", "hall")
    assert names(presence) == {"alice", "dave"}
    await expect(alice, "join", room="hall", username="dave")


@pytest.mark.gen_test(timeout=60)
async def test_typing_notices_cross_nodes(cluster: Cluster, ws: WsConnect) -> None:
    """A typing notice reaches the room's members on the other node, and not the typist."""
    a, b = cluster()
    alice, bob, outsider = await ws(a.port), await ws(b.port), await ws(b.port)
    await enter(alice, "alice", "desk")
    await enter(bob, "bob", "desk")
    await enter(outsider, "olga", "elsewhere")

    await alice.send({"type": "typing", "room": "desk"})
    await expect(bob, "typing", room="desk", username="alice")
    await bob.send({"type": "typing", "room": "desk"})
    # Alice's own notice, had she been sent it, would come first.
    await expect(alice, "typing", room="desk", username="bob")
    await outsider.nothing()


@pytest.mark.gen_test(timeout=60)
async def test_a_dm_reaches_a_user_on_another_node(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """A dm reaches every connection of its addressee, on any node, and the sender's own copy."""
    a, b = cluster()
    alice, bob, bob_tab = await ws(a.port), await ws(b.port), await ws(a.port)
    await enter(alice, "alice", "square")
    welcome, _, _ = await enter(bob, "bob", "square")
    await enter(bob_tab, "bob", "square", token=welcome["token"])

    await alice.send({"type": "dm", "to": "bob", "text": "psst", "cid": "d1"})
    ack = await expect(alice, "dm", cid="d1")
    assert (ack["from"], ack["to"], ack["message"]) == ("alice", "bob", "psst"), ack
    for tab in (bob, bob_tab):
        got = await expect(tab, "dm", to="bob", message="psst")
        assert (got["id"], got["from"]) == (ack["id"], "alice"), got

    await bob.send({"type": "dm", "to": "alice", "text": "what?", "cid": "d2"})
    from_bob: dict[str, Any] = {"from": "bob"}
    reply = await expect(bob, "dm", cid="d2", **from_bob)
    assert reply["id"] == ack["id"] + 1, reply  # one conversation, one sequence of ids
    for client in (alice, bob_tab):
        assert (await expect(client, "dm", message="what?"))["id"] == reply["id"]


@pytest.mark.gen_test(timeout=60)
async def test_a_dm_to_someone_online_nowhere_is_not_online(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """A dm to a name online on no node, or no longer, is refused with not_online."""
    a, b = cluster()
    alice, bob = await ws(a.port), await ws(b.port)
    await enter(alice, "alice", "square")
    await enter(bob, "bob", "square")
    # Notices are folded per second: a leave within a second of a join not yet sent is no news.
    await expect(alice, "join", room="square", username="bob")

    await alice.send({"type": "dm", "to": "nobody", "text": "hello?", "cid": "n1"})
    error = await expect(alice, "error", code="not_online")
    assert error["cid"] == "n1", error

    bob.close()
    await expect(alice, "leave", room="square", username="bob")
    await alice.send({"type": "dm", "to": "bob", "text": "gone?", "cid": "n2"})
    assert (await expect(alice, "error", code="not_online"))["cid"] == "n2"


@pytest.mark.gen_test(timeout=60)
async def test_a_name_online_on_another_node_needs_its_token(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """A join as a name online elsewhere is refused without its token; with it, a second tab."""
    a, b = cluster()
    alice, bob = await ws(a.port), await ws(b.port)
    welcome, _, _ = await enter(alice, "alice", "club")
    await enter(bob, "bob", "club")
    await expect(alice, "join", room="club", username="bob")

    impostor = await ws(b.port)
    for attempt in ({"username": "alice"}, {"username": "ALICE"},
                    {"username": "alice", "token": "not-the-token"}):
        await impostor.send({"type": "join", "room": "club", **attempt})
        await expect(impostor, "error", code="username_taken")

    tab = await ws(b.port)
    second, presence, _ = await enter(tab, "alice", "club", token=welcome["token"])
    assert second["username"] == "alice"
    assert names(presence) == {"alice", "bob"}
    await bob.nothing()  # a second connection is no join

    alice.close()  # the first tab goes; the user stays online through the one on node b
    await bob.nothing(1.0)
    await impostor.send({"type": "join", "room": "club", "username": "alice"})
    await expect(impostor, "error", code="username_taken")

    tab.close()  # the last connection: the name is free
    await expect(bob, "leave", room="club", username="alice")
    await enter(impostor, "alice", "club")


@pytest.mark.gen_test(timeout=60)
async def test_resume_on_another_node_replays_exactly_what_was_missed(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """A join with since on another node replays the missed messages, then live ones, once each."""
    a, b = cluster()
    wendy, rita = await ws(a.port), await ws(b.port)
    await enter(wendy, "wendy", "news")
    welcome, _, _ = await enter(rita, "rita", "news")
    first = await post(wendy, "news", "seen", "s")
    assert (await expect(rita, "message", room="news"))["id"] == first["id"]
    rita.close()
    missed = [await post(wendy, "news", f"missed {n}", f"m{n}") for n in range(3)]

    back = await ws(a.port)  # rita was on node b
    _, _, history = await enter(back, "rita", "news", token=welcome["token"], since=first["id"])
    assert [(m["id"], m["message"]) for m in history["messages"]] == [
        (m["id"], m["message"]) for m in missed]
    assert history.get("recovered") is True, history
    live = await post(wendy, "news", "live", "l")
    got = await expect(back, "message", room="news")
    assert (got["id"], got["message"]) == (missed[-1]["id"] + 1, "live")
    assert got["id"] == live["id"]
    await back.nothing()


@pytest.mark.gen_test(timeout=90)
async def test_resume_on_another_node_while_someone_keeps_posting(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """A resume on another node while a third client posts: history then live, no gap or repeat."""
    a, b = cluster()
    wendy, rita = await ws(a.port), await ws(b.port)
    await enter(wendy, "wendy", "feed")
    welcome, _, _ = await enter(rita, "rita", "feed")
    total = 150
    acks: dict[int, str] = {}  # id -> text, from wendy's own copies

    async def keep_posting() -> None:
        for n in range(total):
            await wendy.send({"type": "message", "room": "feed", "text": f"n{n}", "cid": f"c{n}"})
            await asyncio.sleep(0.01)

    async def collect_acks() -> None:
        while len(acks) < total:
            frame = await expect(wendy, "message", timeout=30, room="feed", username="wendy")
            acks[frame["id"]] = frame["message"]

    posting = asyncio.ensure_future(keep_posting())
    acking = asyncio.ensure_future(collect_acks())
    try:
        before = [await expect(rita, "message", room="feed") for _ in range(20)]
        rita.close()
        since = before[-1]["id"]
        deadline = time.monotonic() + WAIT_S
        while max(acks, default=0) < since + 10:  # let her miss some
            assert time.monotonic() < deadline, "wendy's messages stopped"
            await asyncio.sleep(0.01)

        back = await ws(a.port)  # rita was on node b
        _, _, history = await enter(back, "rita", "feed", token=welcome["token"], since=since)
        assert not posting.done(), "wendy stopped before the resume; make `total` larger"
        await asyncio.wait_for(acking, 30)
        await posting
    finally:
        await stop(posting)
        await stop(acking)

    last = max(acks)
    replayed = history["messages"]
    assert len(replayed) >= 10, history
    assert history.get("recovered") is True, history
    live = await frames_until(back, lambda f: f.get("type") == "message" and f["id"] == last,
                              timeout=15)
    after = replayed + [f for f in live if f.get("type") == "message"]
    assert [m["id"] for m in after] == list(range(since + 1, last + 1))
    assert [m["message"] for m in after] == [acks[n] for n in range(since + 1, last + 1)]
    assert [m["id"] for m in before] == list(range(before[0]["id"], since + 1))
    await back.nothing()


@pytest.mark.gen_test(timeout=90)
async def test_a_killed_node_s_users_leave_and_its_client_resumes_elsewhere(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """SIGKILL a node: its users leave within the timeout, and its client resumes on another."""
    a, b = cluster()
    alice, bob, carol = await ws(a.port), await ws(b.port), await ws(b.port)
    welcome, _, _ = await enter(alice, "alice", "den")
    await enter(bob, "bob", "den")
    await enter(carol, "carol", "den")
    seen = await post(bob, "den", "before", "b0")
    for client in (alice, carol):
        assert (await expect(client, "message", room="den", message="before"))["id"] == seen["id"]

    a.child.proc.kill()
    killed = time.monotonic()
    a.child.proc.wait()
    await alice.closed()  # dropped with its node
    meanwhile = [await post(carol, "den", f"meanwhile {n}", f"c{n}") for n in range(2)]

    await frames_until(bob, lambda f: f.get("type") == "leave" and f.get("username") == "alice",
                       timeout=DEATH_BOUND_S + 1)
    elapsed = time.monotonic() - killed
    assert elapsed <= DEATH_BOUND_S, f"alice left {elapsed:.1f} s after her node died"
    fresh = await ws(b.port)
    _, presence, _ = await enter(fresh, "dave", "den")
    assert names(presence) == {"bob", "carol", "dave"}

    back = await ws(b.port)
    again, _, history = await enter(back, "alice", "den", token=welcome["token"],
                                    since=seen["id"])
    assert again["username"] == "alice"
    assert [(m["id"], m["message"]) for m in history["messages"]] == [
        (m["id"], m["message"]) for m in meanwhile]
    live = await post(bob, "den", "welcome back", "b1")
    got = await expect(back, "message", room="den")
    assert (got["id"], got["message"]) == (meanwhile[-1]["id"] + 1, "welcome back")
    assert got["id"] == live["id"]
    await back.nothing()


@pytest.mark.gen_test(timeout=120)
async def test_redis_down_refuses_messages_and_its_restart_resumes_the_chat(
    cluster: Cluster, ws: WsConnect, own_redis: OwnRedis,
) -> None:
    """Redis down: 503, messages refused and sent to nobody. Back: healthy, chatting, no gap."""
    own_redis.start()
    nodes = a, b = cluster(redis_url=own_redis.url)
    await wait_health(nodes, 200, "up", timeout=WAIT_S)
    alice, bob = await ws(a.port), await ws(b.port)
    await enter(alice, "alice", "ops")
    await enter(bob, "bob", "ops")
    before = await post(alice, "ops", "before", "b")
    assert (await expect(bob, "message", room="ops", message="before"))["id"] == before["id"]

    own_redis.kill()
    await wait_health(nodes, 503, "down")
    for client, cid in ((alice, "lost-a"), (bob, "lost-b")):
        await client.send({"type": "message", "room": "ops", "text": f"{cid}!", "cid": cid})
        error = await expect(client, "error", timeout=10)
        assert error["code"] in ("broker_down", "store_failed"), error
        assert error["cid"] == cid, error

    own_redis.start()
    await wait_health(nodes, 200, "up")
    ids = []
    for sender, text in ((alice, "after from a"), (bob, "after from b")):
        await sender.send({"type": "message", "room": "ops", "text": text, "cid": text})
        got = [await expect(client, "message", timeout=10, room="ops") for client in (alice, bob)]
        assert [(m["id"], m["message"]) for m in got] == [(got[0]["id"], text)] * 2, got
        ids.append(got[0]["id"])
    assert ids == [before["id"] + 1, before["id"] + 2]

    _, _, history = await enter(await ws(b.port), "carol", "ops")
    assert [m["message"] for m in history["messages"]] == [
        "before", "after from a", "after from b"]


@pytest.mark.gen_test(timeout=90)
async def test_a_redis_that_comes_back_empty_gets_the_nodes_users_again(
    cluster: Cluster, ws: WsConnect, own_redis: OwnRedis, tmp_path: Path,
) -> None:
    """Redis back without its data: nodes count their users again, and new ids follow on."""
    own_redis.start()
    nodes = a, b = cluster(redis_url=own_redis.url)
    alice, bob = await ws(a.port), await ws(b.port)
    await enter(alice, "alice", "ops")
    await enter(bob, "bob", "ops")
    for n in range(3):
        await post(alice, "ops", f"old {n}", f"old{n}")
        await expect(bob, "message", room="ops", message=f"old {n}")

    own_redis.kill()
    await wait_health(nodes, 503, "down")
    own_redis.workdir = tmp_path / "empty"  # its append-only file stays behind
    own_redis.workdir.mkdir()
    own_redis.start()
    await wait_health(nodes, 200, "up")
    await asyncio.sleep(3 * HEARTBEAT_S)  # each node's next beat finds its key gone

    carol = await ws(b.port)
    # A new name waits while the nodes claim theirs again (node-timeout): as the page does, the
    # join is sent again while it is refused with broker_down.
    deadline = time.monotonic() + NODE_TIMEOUT_S + RECOVERY_S
    while (reply := await join_reply(carol, "carol", "ops"))["type"] == "error":
        assert reply["code"] == "broker_down" and time.monotonic() < deadline, reply
        await asyncio.sleep(0.2)
    presence = await expect(carol, "presence", room="ops")
    await expect(carol, "history", room="ops")
    assert names(presence) == {"alice", "bob", "carol"}
    fresh = await post(alice, "ops", "new", "new")
    assert fresh["id"] == 4  # the history is in PostgreSQL: Redis lost none of it
    assert (await expect(bob, "message", room="ops", message="new"))["id"] == 4


@pytest.mark.gen_test(timeout=60)
async def test_one_message_reaches_members_on_three_nodes_exactly_once(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """With three nodes, a message reaches a member on each exactly once, with one id."""
    nodes = cluster(3)
    clients = [await ws(node.port) for node in nodes]
    for n, client in enumerate(clients):
        await enter(client, f"user{n}", "tri")
    ids = []
    for sender, text in ((clients[0], "one"), (clients[2], "marker")):
        # Each client's messages up to this one: this one alone, so nothing came twice before.
        await sender.send({"type": "message", "room": "tri", "text": text, "cid": text})
        got = []
        for client in clients:
            frames = await frames_until(client, has("message", text))
            got.append([(f["id"], f["message"]) for f in frames if f.get("type") == "message"])
        assert got == [[(got[0][0][0], text)]] * 3, got
        ids.append(got[0][0][0])
    assert ids[1] == ids[0] + 1
    for client in clients:  # join notices are folded per second: one may still come, late
        late = await frames_until(client, lambda f: False, timeout=0.3, allow_timeout=True)
        assert [f for f in late if f.get("type") == "message"] == [], late


@pytest.mark.parametrize("db", [":memory:", "sqlite-file"])
def test_a_redis_broker_needs_a_postgresql_db(redis_server: str, tmp_path: Path,
                                             db: str) -> None:
    """--broker=redis://... with a SQLite --db is one error line naming postgresql://, exit 2."""
    other = {":memory:": ":memory:", "sqlite-file": str(tmp_path / "chat.db")}[db]
    result = run(f"--port={free_port()}", f"--broker={redis_server}", f"--db={other}")
    assert result.returncode == 2, result.stderr
    line = assert_one_line_error(result)
    assert "--broker" in line and "postgresql://" in line, line
    assert not (tmp_path / "chat.db").exists()


@pytest.mark.parametrize("broker", ["memory://", "redis"])
def test_a_redis_db_is_refused(redis_server: str, broker: str) -> None:
    """--db=redis://... (the retired Redis history) is one error line, password redacted, exit 2."""
    db = redis_server.replace("redis://", "redis://:hunter2@")
    result = run(f"--port={free_port()}", f"--db={db}",
                 f"--broker={redis_server if broker == 'redis' else broker}")
    assert result.returncode == 2, result.stderr
    line = assert_one_line_error(result)
    assert "--db" in line and "postgresql://" in line and "hunter2" not in line, line


# Two nodes in this process, to cut one node off Redis's Pub/Sub alone


@contextlib.asynccontextmanager
async def node_in_process(url: str, db_url: str, **broker_options: Any) -> AsyncIterator[
        tuple[int, ChatApplication]]:
    """A cluster node served on a free port of this process: its port and app."""
    settings = Settings(broker=url, db=db_url, node_heartbeat=HEARTBEAT_S,
                        node_timeout=NODE_TIMEOUT_S, rate_limit=0)
    store = PostgresStore(db_url)
    await store.start()
    broker = RedisBroker(url, **broker_options)
    roster = RedisRoster(url, heartbeat=HEARTBEAT_S, timeout=NODE_TIMEOUT_S)
    app = make_app(settings, store, broker, roster)
    await app.hub.start()
    server = HTTPServer(app)
    port = free_port()
    server.listen(port, "127.0.0.1")
    try:
        yield port, app
    finally:
        server.stop()
        app.hub.close_all()
        await server.close_all_connections()
        await app.hub.close()
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_node_cut_off_from_pub_sub_catches_its_clients_up_from_history(
    redis_db: str, postgres_url: str, ws: WsConnect,
) -> None:
    """What is published while a node's subscriber is cut off reaches its clients when back."""
    async with node_in_process(redis_db, postgres_url) as (a_port, _), \
            node_in_process(redis_db, postgres_url, backoff_first_s=1.0,
                            backoff_max_s=1.0) as (b_port, b):
        alice, bob = await ws(a_port), await ws(b_port)
        await enter(alice, "alice", "news")
        await enter(bob, "bob", "news")
        first = await post(alice, "news", "before", "c0")
        await expect(bob, "message", id=first["id"])

        port = int(redis_db.rsplit(":", 1)[1].split("/")[0])
        await asyncio.to_thread(redis_command, port, "CLIENT", "KILL", "TYPE", "pubsub")
        # Node a is back within ~0.1 s; node b waits 0.5-1 s: what a posts meanwhile is lost to
        # b's subscriber, and b must read it from the store.
        missed = []
        for cid in ("m0", "m1", "m2"):
            for _attempt in range(50):
                await alice.send({"type": "message", "room": "news", "text": cid, "cid": cid})
                reply = (await frames_until(alice, has("cid", cid)))[-1]
                if reply["type"] == "message":
                    break
                await asyncio.sleep(0.02)  # broker_down: node a is not back yet
            missed.append(reply["id"])
        assert not b.hub.broker.healthy, "node b came back too soon for this test"
        assert missed == [first["id"] + 1, first["id"] + 2, first["id"] + 3]
        got = [await expect(bob, "message", room="news") for _ in missed]
        assert [m["id"] for m in got] == missed
        assert b.hub.stats.gap_fills >= 1
        live = await post(alice, "news", "after", "c9")
        assert (await expect(bob, "message"))["id"] == live["id"]
        # No message twice; the presence list node b resends once back may still come.
        while (extra := await next_frame(bob, 0.3)) is not None:
            assert extra["type"] == "presence", extra


@pytest.mark.gen_test(timeout=60)
async def test_a_dm_to_a_tutorial_only_user_on_another_node_is_not_online(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """A dm to a user whose only connections are tutorial ones, on another node, is not_online."""
    a, b = cluster()
    alice, tutorial = await ws(a.port), await ws(b.port)
    await enter(alice, "alice", "general")
    await tutorial.send({"username": "tut", "message": "", "email": ""})  # joins general
    await expect(alice, "join", room="general", username="tut")

    await alice.send({"type": "dm", "to": "tut", "text": "hello?", "cid": "t1"})
    error = await expect(alice, "error", code="not_online")
    assert error["cid"] == "t1", error


async def join_reply(client: ChatClient, username: str, room: str) -> dict[str, Any]:
    """Send a join; the welcome or error that answers it."""
    await client.send({"type": "join", "username": username, "room": room})
    frames = await frames_until(client, lambda f: f.get("type") in ("welcome", "error"))
    return frames[-1]


@pytest.mark.gen_test(timeout=90)
async def test_a_redis_back_empty_gives_no_held_name_to_another(
    own_redis: OwnRedis, postgres_url: str, ws: WsConnect, tmp_path: Path,
) -> None:
    """Redis back without its data: a name held on a node that has not noticed yet is not granted
    on another; once the holder claims it again it is taken, and its dms reach the holder alone."""
    own_redis.start()
    async with node_in_process(own_redis.url, postgres_url) as (a_port, a), \
            node_in_process(own_redis.url, postgres_url) as (b_port, b):
        alice, bob = await ws(a_port), await ws(b_port)
        await enter(alice, "alice", "ops")
        await enter(bob, "bob", "ops")
        assert isinstance(a.hub.roster, RedisRoster)
        stop_beating(a.hub.roster)  # node a notices the loss only at the beat this test gives it

        own_redis.kill()
        own_redis.workdir = tmp_path / "empty"  # its append-only file stays behind
        own_redis.workdir.mkdir()
        own_redis.start()
        impostor = await ws(b_port)
        deadline = time.monotonic() + RECOVERY_S
        while True:  # refused while node b is cut off, then while the roster is rebuilt
            reply = await join_reply(impostor, "alice", "ops")
            assert reply["type"] == "error", f"granted before its holder claimed it: {reply}"
            assert reply["code"] == "broker_down", reply
            if "counting who is online" in reply["reason"]:
                break
            assert time.monotonic() < deadline, reply
            await asyncio.sleep(0.1)

        await a.hub.roster.beat()  # node a finds its key gone and claims its users again
        await eventually_taken(impostor, "alice", "ops")
        # A dm published while a node's subscriber is still reconnecting reaches history only
        # (docs/deployment.md): both nodes listen again before this one is sent.
        deadline = time.monotonic() + RECOVERY_S
        while not (a.hub.broker.healthy and b.hub.broker.healthy):
            assert time.monotonic() < deadline, "a node's broker did not come back"
            await asyncio.sleep(0.05)
        await bob.send({"type": "dm", "to": "alice", "text": "still you?", "cid": "d1"})
        assert (await expect(alice, "dm", cid="d1"))["to"] == "alice"
        await impostor.nothing()


async def eventually_taken(client: ChatClient, username: str, room: str) -> None:
    """Join until the reply is username_taken (broker_down may come first); never a welcome."""
    deadline = time.monotonic() + WAIT_S
    while True:
        reply = await join_reply(client, username, room)
        assert reply["type"] == "error", reply
        if reply["code"] == "username_taken":
            return
        assert reply["code"] == "broker_down" and time.monotonic() < deadline, reply
        await asyncio.sleep(0.1)


@pytest.mark.gen_test(timeout=60)
async def test_a_name_claimed_again_that_another_holds_closes_the_late_holder(
    redis_db: str, postgres_url: str, ws: WsConnect,
) -> None:
    """A node counted out (stalled) finds its user's name taken since: it closes that user, 4001."""
    async with node_in_process(redis_db, postgres_url) as (a_port, a), \
            node_in_process(redis_db, postgres_url) as (b_port, _):
        alice, bob = await ws(a_port), await ws(b_port)
        await enter(alice, "alice", "ops")
        await enter(bob, "bob", "ops")
        assert isinstance(a.hub.roster, RedisRoster)
        stop_beating(a.hub.roster)  # as a stalled process: node b reaps it
        await expect(bob, "leave", room="ops", username="alice", timeout=DEATH_BOUND_S)
        impostor = await ws(b_port)
        await enter(impostor, "alice", "ops")  # free on the roster: granted

        await a.hub.roster.beat()  # node a is back, finds itself counted out, claims again
        assert await alice.closed() == 4001
        assert "held by someone else" in (alice.conn.close_reason or "")
        await bob.send({"type": "dm", "to": "alice", "text": "who?", "cid": "d1"})
        assert (await expect(impostor, "dm", cid="d1"))["message"] == "who?"


async def next_frame(client: ChatClient, timeout: float) -> dict[str, Any] | None:
    """The next frame within `timeout`, or None if none comes."""
    try:
        return await client.recv(timeout)
    except TimeoutError:
        return None


# PostgreSQL as the cluster's history: concurrent appends, a node dying after its commit, a restart


@pytest.mark.gen_test(timeout=90)
async def test_concurrent_appends_from_three_nodes_reach_every_member_in_order(
    cluster: Cluster, ws: WsConnect,
) -> None:
    """Three nodes post into one room at once: ids 1..N, each once, every member reads all in
    order (with two members per node)."""
    nodes = cluster(3)
    clients = [await ws(node.port) for node in nodes for _ in range(2)]
    for n, client in enumerate(clients):
        await enter(client, f"user{n}", "rush")
    senders = clients[::2]  # one per node
    per_sender = 40

    async def burst(n: int, client: ChatClient) -> None:
        for k in range(per_sender):
            await client.send({"type": "message", "room": "rush", "text": f"{n}.{k}",
                               "cid": f"{n}.{k}"})

    await asyncio.gather(*(burst(n, client) for n, client in enumerate(senders)))
    total = per_sender * len(senders)
    read = []
    for client in clients:
        frames = await frames_until(client, lambda f: f.get("type") == "message"
                                    and f["id"] == total, timeout=30)
        read.append([(f["id"], f["message"]) for f in frames if f.get("type") == "message"])
    assert [i for i, _ in read[0]] == list(range(1, total + 1)), read[0]
    for other in read[1:]:  # compared one by one: a failure shows where they part
        assert other == read[0]
    texts = {t for _, t in read[0]}
    assert texts == {f"{n}.{k}" for n in range(len(senders)) for k in range(per_sender)}
    for client in clients:  # no message twice
        await only_notices(client, 0.5)


@pytest.mark.parametrize("kind", ["room", "dm"])
@pytest.mark.gen_test(timeout=60)
async def test_a_message_whose_node_dies_right_after_the_commit_reaches_the_others(
    cluster: Cluster, ws: WsConnect, kind: str,
) -> None:
    """A node killed (SIGKILL) between its commit and its publish: the message still reaches
    the other node's members live, once, and is in history."""
    (doomed,) = cluster(1, **{FAULT_ENV: "exit-after-commit"})
    (b,) = cluster(1)
    alice, bob, carol = await ws(doomed.port), await ws(b.port), await ws(b.port)
    await enter(alice, "alice", "wake")
    await enter(bob, "bob", "wake")
    await enter(carol, "carol", "wake")
    if kind == "room":
        await alice.send({"type": "message", "room": "wake", "text": "last words", "cid": "w"})
    else:
        await alice.send({"type": "dm", "to": "bob", "text": "last words", "cid": "w"})
    assert await asyncio.to_thread(doomed.child.proc.wait, WAIT_S) == -9
    got = await expect(bob, "message" if kind == "room" else "dm", message="last words")
    assert (got["id"], got["cid"]) == (1, "w"), got
    if kind == "room":
        assert (await expect(carol, "message", message="last words"))["id"] == 1
        _, _, history = await enter(await ws(b.port), "dave", "wake")
        assert [(m["id"], m["message"]) for m in history["messages"]] == [(1, "last words")]
    after = await post(carol, "wake", "and then", "t")  # the room goes on, from id 2 or 1
    await expect(bob, "message", id=after["id"], message="and then")
    for client in (bob, carol):  # the message once: no copy comes later
        await only_notices(client, 1.0)


async def only_notices(client: ChatClient, timeout: float) -> None:
    """Assert that nothing but notices arrives within `timeout`."""
    deadline = time.monotonic() + timeout
    while (frame := await next_frame(client, max(0.01, deadline - time.monotonic()))):
        assert frame.get("type") in NOTICES, frame
        if time.monotonic() >= deadline:
            return


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL of this test's own, to stop and start again."""
    with postgres_cluster() as server:
        yield server


@pytest.mark.gen_test(timeout=120)
async def test_postgresql_restarted_mid_chat_refuses_then_resumes_losing_nothing(
    cluster: Cluster, ws: WsConnect, own_postgres: PostgresCluster,
) -> None:
    """PostgreSQL down: senders get store_failed and nothing is delivered. Back: chat resumes,
    and history holds every message that was acknowledged, once, in order."""
    cluster.allowed_errors = re.compile(r"could not store a message")
    a, b = cluster(db_url=own_postgres.create_schema())
    alice, bob = await ws(a.port), await ws(b.port)
    await enter(alice, "alice", "vault")
    await enter(bob, "bob", "vault")
    await expect(alice, "join", username="bob")  # notices fold per second: not later, below
    acked = [(await post(alice, "vault", "before", "b"))["message"]]
    await expect(bob, "message", message="before")

    own_postgres.stop("fast")
    for client, cid in ((alice, "lost-a"), (bob, "lost-b")):
        await client.send({"type": "message", "room": "vault", "text": cid, "cid": cid})
        error = await expect(client, "error", timeout=15)
        assert (error["code"], error["cid"]) == ("store_failed", cid), error
    await alice.nothing(0.5)
    await bob.nothing(0.5)

    own_postgres.start()
    deadline = time.monotonic() + RECOVERY_S
    for sender, name in ((alice, "alice"), (bob, "bob"), (alice, "alice")):
        text = f"after {len(acked)}"
        while True:  # the pools find their connections gone, and open new ones
            await sender.send({"type": "message", "room": "vault", "text": text, "cid": text})
            reply = (await frames_until(sender, has("cid", text), timeout=15))[-1]
            if reply["type"] == "message":
                break
            assert reply["code"] == "store_failed" and time.monotonic() < deadline, reply
            await asyncio.sleep(0.2)
        acked.append(text)
        other = bob if sender is alice else alice
        await expect(other, "message", message=text, username=name)

    _, _, history = await enter(await ws(b.port), "carol", "vault")
    assert [(m["id"], m["message"]) for m in history["messages"]] == list(
        enumerate(acked, start=1))
    while not all("listening for commits again" in node.child.stderr for node in (a, b)):
        assert time.monotonic() < deadline + RECOVERY_S, "a node does not LISTEN again"
        await asyncio.sleep(0.1)


@pytest.mark.gen_test(timeout=60)
async def test_a_commit_made_while_the_nodes_did_not_listen_reaches_them_once_they_do(
    redis_db: str, postgres_url: str, ws: WsConnect,
) -> None:
    """The LISTEN connections killed, then a message committed and never published: once the
    nodes listen again they fill their rooms, and the members get it, once."""
    async with node_in_process(redis_db, postgres_url) as (a_port, a), \
            node_in_process(redis_db, postgres_url) as (b_port, _):
        alice, bob = await ws(a_port), await ws(b_port)
        await enter(alice, "alice", "hall")
        await enter(bob, "bob", "hall")
        first = await post(alice, "hall", "heard", "h")
        await expect(bob, "message", id=first["id"])

        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            cur = await conn.execute(  # waits (up to 5 s) until each is gone
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE application_name = %s", (APPLICATION_NAME,))
            assert [row[0] for row in await cur.fetchall()] == [True, True]
        # Stored as by a node that died before publishing it, while no node listens (each
        # waits RECONNECT_FIRST_S before listening again).
        orphan, _ = await a.hub.store.append("hall", username="carol", avatar="", text="unheard",
                                             ts=int(time.time() * 1000))
        for client in (alice, bob):
            got = await expect(client, "message", message="unheard")
            assert got["id"] == orphan.id == first["id"] + 1, got
        for client in (alice, bob):
            await only_notices(client, 1.0)
