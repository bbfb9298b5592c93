"""Fixtures: the app built through make_app(), settings per test, clients closed after."""

from __future__ import annotations

import gc
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tornado.ioloop import IOLoop

from chat.accounts import AccountService, open_accounts
from chat.config import Settings
from chat.files.service import Files
from chat.store import SQLiteStore
from chat.store.base import HistoryStore
from chat.store.postgres import PostgresStore
from chat_server import ChatApplication, make_app
from handlers.httpserver import ChatHTTPServer, chat_http_server
from tests.errorlog import watching
from tests.hangs import pytest_runtest_makereport  # noqa: F401 (a hook: pytest finds it here)
from tests.helpers import ChatClient, Connect, RawClient, RawConnect
from tests.pgserver import PostgresCluster, postgres_cluster
from tests.serverproc import (
    Child,
    OwnRedis,
    Spawn,
    WsConnect,
    child_env,
    free_port,
    start_redis,
)

T = TypeVar("T")

# Ping off unless a test asks: a test's own timing must not race the keepalive. Join and leave
# notices unfolded unless a test asks: a test's own timing must not race notice-interval.
# Leave notices at once unless a test asks: its clients close and expect the leave now.
# room_creation join: most tests meet in rooms made by joining them (as before rooms had owners);
# tests of --room-creation explicit, the default, say so.
TEST_DEFAULTS: dict[str, Any] = {"ping_interval": 0.0, "notice_interval": 0.0,
                                 "join_grace": 0.0, "room_creation": "join"}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what importing the tests made: each test's full collection (tests/errorlog.py)
    then walks that test's objects, not ~140,000 module-level ones (~5 ms, was ~120)."""
    gc.collect()
    gc.freeze()


class Clock:
    """The accounts' time, which a test moves on instead of sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """Settings(**TEST_DEFAULTS), changed by a test's `@pytest.mark.settings(...)`."""
    marker = request.node.get_closest_marker("settings")
    return Settings(**{**TEST_DEFAULTS, **(marker.kwargs if marker else {})})


# The stores `app_on_both_stores` runs a test on: SQLite in memory, and PostgreSQL (history and
# accounts in one schema, as a cluster's nodes use it) where a cluster can be started.
BOTH_STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _app_on(kind: str, request: pytest.FixtureRequest, settings: Settings, io_loop: IOLoop,
            tmp_path: Path) -> Iterator[ChatApplication]:
    """The app fixtures' body: the app on `kind`'s stores, its uploads in the test's folder."""
    store: HistoryStore
    if kind == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        store = PostgresStore(url, settings.history_per_room)
        accounts = open_accounts(url, revocation_poll_s=settings.revocation_poll)
    else:
        store = SQLiteStore(":memory:", settings.history_per_room)
        accounts = open_accounts(":memory:", revocation_poll_s=settings.revocation_poll)
    io_loop.run_sync(store.start)
    io_loop.run_sync(accounts.start)
    files = Files.of(settings, accounts, store, tmp_path / "files")
    files.disk.prepare()
    made = make_app(settings, store, accounts=AccountService(accounts, settings.account_policy),
                    files=files)
    yield made
    close_app(made, io_loop, accounts.close, store.close)
    files.close()


@pytest.fixture
def app(request: pytest.FixtureRequest, settings: Settings, io_loop: IOLoop,
        tmp_path: Path) -> Iterator[ChatApplication]:
    """The app on an in-memory SQLite history and accounts of its own (`--db :memory:`),
    its uploads in the test's temporary folder."""
    yield from _app_on("sqlite", request, settings, io_loop, tmp_path)


@pytest.fixture(params=BOTH_STORES)
def app_on_both_stores(request: pytest.FixtureRequest, settings: Settings, io_loop: IOLoop,
                       tmp_path: Path) -> Iterator[ChatApplication]:
    """As `app`, once on SQLite and once on PostgreSQL. A module runs all its tests on both
    with `from tests.conftest import app_on_both_stores as app` (pytest names a fixture by
    the module attribute that holds it)."""
    yield from _app_on(request.param, request, settings, io_loop, tmp_path)


def close_app(app: ChatApplication, io_loop: IOLoop,
              *closes: Callable[[], Awaitable[None]]) -> None:
    """Stop the app's hub (its last writes finish), then close its stores, in that order."""
    io_loop.run_sync(app.hub.close)
    for close in closes:
        io_loop.run_sync(close)


@pytest.fixture
def http_server(app: ChatApplication, settings: Settings, io_loop: IOLoop,
                _unused_port: tuple[socket.socket, int]) -> Iterator[ChatHTTPServer]:
    """The app behind the server serve() runs (pytest-tornado's fixture has a plain one)."""
    server = chat_http_server(app, settings)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.fixture
def ws_url(http_server: ChatHTTPServer, http_port: int) -> str:
    return f"ws://127.0.0.1:{http_port}/ws"


def opener(open_one: Callable[..., Awaitable[T]], drop: Callable[[T], None]) -> Iterator[
        Callable[..., Awaitable[T]]]:
    """A fixture body: open with `open_one`, and `drop` every one opened after the test."""
    opened: list[T] = []

    async def open_tracked(*args: Any, **kwargs: Any) -> T:
        item = await open_one(*args, **kwargs)
        opened.append(item)
        return item

    yield open_tracked
    for item in opened:
        drop(item)


@pytest.fixture
def connect(ws_url: str) -> Iterator[Connect]:
    """Open clients to the test server (headers as keywords); each is closed after the test."""
    yield from opener(lambda **headers: ChatClient.connect(ws_url, **headers), ChatClient.close)


@pytest.fixture
def raw_connect(http_server: ChatHTTPServer, http_port: int) -> Iterator[RawConnect]:
    """Open raw RFC 6455 clients to the test server; each is dropped after the test."""
    yield from opener(lambda **kwargs: RawClient.connect(http_port, **kwargs), RawClient.abort)


@pytest.fixture(autouse=True)
def no_unexpected_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test on an ERROR log record it did not declare (tests/errorlog.py)."""
    marker = request.node.get_closest_marker("expect_errors")
    with watching() as log:
        yield
    log.check(marker.args if marker else ())


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start chat_server.py children; each is killed after the test, whatever happened."""
    children: list[Child] = []

    def start(*args: str, ready_port: int | None = None, **env: str) -> Child:
        child = Child(list(args), child_env(**env), tmp_path / f"stderr-{len(children)}.log")
        children.append(child)
        if ready_port is not None:
            child.wait_ready(ready_port)
        return child

    yield start
    for child in children:
        child.kill()


@pytest.fixture
def ws(io_loop: IOLoop) -> Iterator[WsConnect]:
    """Open WebSocket clients to a child on a port; every one is closed after the test."""
    yield from opener(lambda port: ChatClient.connect(f"ws://127.0.0.1:{port}/ws"),
                      ChatClient.close)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free port for this test session; its URL (redis://...)."""
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def own_redis(redis_server: str, tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis of this test's own, to kill and restart (skips or fails as `redis_server`)."""
    workdir = tmp_path / "own-redis"
    workdir.mkdir()
    servers = OwnRedis(workdir)
    yield servers
    servers.kill()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresCluster]:
    """A real PostgreSQL cluster for this test session (skips without the binaries, fails in CI)."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_server: PostgresCluster) -> str:
    """A postgresql:// URL of an empty schema of this test's own (in the session's database)."""
    return postgres_server.create_schema()
