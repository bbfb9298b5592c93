"""Browser fixtures: a real server in a child process, Debian's Chromium through Playwright.

Each test gets `server` (a ServerProcess on a free port, restartable on the same port) and
`people` (a factory of Person: one browser context each, so separate cookies and storage). Every
request a page makes is recorded: the server's own are let through, Gravatar's are refused (no
internet here, and it exercises the page's drawn fallback avatars), anything else is refused and
counted as a leak. Console errors and page errors are collected. At the end of a test each
person's page is saved to test-output/<test>/<name>.png.

Playwright's sync API runs its own event loop in a greenlet, so these are plain pytest tests,
not pytest-tornado ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.serverproc import assert_clean as assert_log_clean
from tests.serverproc import child_env, free_port, healthz

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Dialog,
        FloatRect,
        Locator,
        Response,
        Route,
        ViewportSize,
        WebSocket,
    )

# Installed by `scripts/bootstrap test`; a missing package skips locally but fails in CI.
if os.environ.get("CI") == "true":
    import playwright.sync_api as playwright_sync
else:
    playwright_sync = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output"
CHROMIUM = os.environ.get("CHAT_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying Google's hosts, which this
# machine's closed network refuses; --no-sandbox because the tests run as root.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GRAVATAR_HOSTS = {"www.gravatar.com", "secure.gravatar.com", "gravatar.com"}
START_TIMEOUT_S = 15.0  # a cold start on a shared CI machine
EXPECT_TIMEOUT_MS = 10_000  # for each wait and expect(): generous, CI machines are shared
DESKTOP: ViewportSize = {"width": 1180, "height": 780}
PHONE: ViewportSize = {"width": 360, "height": 740}
playwright_sync.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
# The console line Chromium prints for each failed WebSocket attempt while the server is down.
WS_REFUSED = re.compile(r"WebSocket connection to '.*' failed")
# The console line Chromium prints for a fetch answered with a client error.
API_REFUSAL = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


# Inputs and buttons on the page that have no accessible name (label, aria-label or text).
UNLABELLED_CONTROLS = """() =>
  [...document.querySelectorAll('input, textarea, select, button')]
    .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label') ||
                      el.getAttribute('aria-labelledby') ||
                      (el.tagName === 'BUTTON' && el.textContent.trim())))
    .map((el) => el.outerHTML.slice(0, 120))"""


class ServerProcess:
    """`python chat_server.py` on a fixed port, with its history in `db`; log in `log_path`."""

    def __init__(self, port: int, db: str, log_path: Path, *extra: str) -> None:
        self.port = port
        self.db = db
        self.log_path = log_path
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        args = [sys.executable, str(REPO / "chat_server.py"), f"--port={self.port}",
                f"--db={self.db}", *self.extra]
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the handle
            self.proc = subprocess.Popen(args, cwd=REPO, env=child_env(), stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while healthz(self.port) is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not serving after {START_TIMEOUT_S} s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stops the server (SIGKILL: as if it crashed) and waits for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Person:
    """One user: a browser context with one page, and what that page did."""

    def __init__(self, name: str, context: BrowserContext, base_url: str) -> None:
        self.name = name
        self.context = context
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.gravatar_requests: list[str] = []
        self.foreign_requests: list[str] = []
        self.sockets: list[str] = []
        self.api_refusals: list[str] = []  # the API's 4xx answers (see _console)
        self.requests: list[str] = []  # every URL the page asked for, ours included
        self.dialogs: list[str] = []
        self.allow_ws_failures = False
        self.folder = OUTPUT
        context.route("**/*", self._route)
        self.page = context.new_page()
        self.page.set_default_timeout(EXPECT_TIMEOUT_MS)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        self.sent: list[list[dict[str, Any]]] = []  # the frames sent, one list per socket
        self.page.on("websocket", self._socket)
        self.page.on("dialog", self._dialog)

    # What the page sends and prints

    def _socket(self, ws: WebSocket) -> None:
        self.sockets.append(ws.url)
        frames: list[dict[str, Any]] = []
        self.sent.append(frames)
        ws.on("framesent", lambda payload: frames.append(json.loads(payload)))

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)  # alert() from injected script would land here
        dialog.dismiss()

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.requests.append(url)
        host = urlsplit(url).hostname or ""
        if url.startswith(self.base_url + "/"):
            route.continue_()
        elif host in GRAVATAR_HOSTS:
            self.gravatar_requests.append(url)
            route.abort()
        else:
            self.foreign_requests.append(url)
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        source = urlsplit(url).hostname or ""
        if source in GRAVATAR_HOSTS:
            return  # "Failed to load resource" for the avatars the route above refused
        if url.startswith(self.base_url + "/api/v1/") and API_REFUSAL.search(message.text):
            # Chromium logs every 4xx a fetch gets; the accounts API answers with them (not
            # signed in, wrong password...), and the page shows them: recorded, not an error.
            self.api_refusals.append(url)
            return
        if self.allow_ws_failures and WS_REFUSED.search(message.text):
            return
        self.console_errors.append(message.text)

    def assert_clean(self) -> None:
        """No console or page errors, and nothing fetched from a host other than ours."""
        assert self.page_errors == [], f"{self.name}: page errors {self.page_errors}"
        assert self.dialogs == [], f"{self.name}: dialogs {self.dialogs}"
        assert self.console_errors == [], f"{self.name}: console errors {self.console_errors}"
        assert self.foreign_requests == [], f"{self.name}: requests {self.foreign_requests}"
        ws_base = self.base_url.replace("http://", "ws://", 1)
        assert all(url == ws_base + "/ws" for url in self.sockets), self.sockets
        unlabelled = self.page.evaluate(UNLABELLED_CONTROLS)
        assert unlabelled == [], f"{self.name}: controls without a label {unlabelled}"

    # What a person does

    def open(self, path: str = "/") -> Response:
        """Loads the page; the HTTP response of the document."""
        response = self.page.goto(self.base_url + path)
        assert response is not None, f"no response for {path}"
        # The entry form is the first thing the page draws once it knows it is not signed in.
        self.page.get_by_label("Username").wait_for()
        return response

    def as_guest(self) -> None:
        """Switches the entry form to joining as a guest, unless it is showing that already."""
        guest = self.page.get_by_role("button", name="Continue as a guest")
        if guest.count():
            guest.click()

    def join(self, email: str | None = None, username: str | None = None) -> Person:
        """Joins as a guest with this person's name (or `username`)."""
        page = self.page
        self.as_guest()
        page.get_by_label("Username").fill(username or self.name)
        if email:
            page.get_by_label("Email (optional, only for your Gravatar picture)").fill(email)
        page.get_by_role("button", name="Join", exact=True).click()
        self.composer.wait_for()
        return self

    @property
    def composer(self) -> Locator:
        return self.page.locator("#composer-text")

    def say(self, text: str) -> None:
        self.composer.fill(text)
        self.composer.press("Enter")

    def sidebar(self) -> Locator:
        """The sidebar, opened first if the screen is narrow enough to hide it."""
        menu = self.page.get_by_role("button", name=re.compile("^Rooms and people"))
        if menu.is_visible() and menu.get_attribute("aria-expanded") != "true":
            menu.click()
        return self.page.locator("#sidebar")

    def join_room(self, room: str) -> None:
        side = self.sidebar()
        side.get_by_label("Join or create a room").fill(room)
        side.get_by_role("button", name="Join", exact=True).click()

    def open_room(self, room: str) -> None:
        self.sidebar().get_by_role("button", name=re.compile(rf"^#{re.escape(room)}\b")).click()

    def room_button(self, room: str) -> Locator:
        name = re.compile(rf"^#{re.escape(room)}")
        return self.page.locator("#sidebar .rooms .conv", has_text=name)

    def message_texts(self) -> list[str]:
        """The texts of the acknowledged messages in the current conversation, in order."""
        return self.page.locator(".message:not(.pending) .text").all_inner_texts()

    def message(self, text: str) -> Locator:
        text_part = self.page.locator(".text", has_text=text)
        return self.page.locator(".message:not(.pending)", has=text_part)

    def snap(self, label: str) -> None:
        """A picture of the page now, beside the one taken at the end of the test."""
        self.screenshot(self.folder, f"{self.name}-{label}")

    def screenshot(self, folder: Path, stem: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem or self.name) or "user"
        self.page.screenshot(path=str(folder / f"{safe}.png"), animations="disabled")


def box(locator: Locator) -> FloatRect:
    """Where `locator` is drawn; it must be visible."""
    rect = locator.bounding_box()
    assert rect is not None, f"{locator} is not drawn"
    return rect


# What the `people` fixture gives a test: people("alice", viewport=..., **context_args).
People = Callable[..., Person]


# Per module, not per session: while Playwright's sync API is running, its event loop counts
# as running in this thread, and the Tornado tests that come after would find it there.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap test installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: run scripts/bootstrap test (installs chromium)")
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A server on a free port with its history in a file (so a restart keeps it)."""
    marker = request.node.get_closest_marker("server_args")
    extra = marker.args if marker else ()
    proc = ServerProcess(free_port(), str(tmp_path / "chat.db"), tmp_path / "server.log", *extra)
    proc.start()
    yield proc
    proc.stop()
    assert_log_clean(proc.log())  # no traceback or ERROR line, whatever the pages did


@pytest.fixture
def people(browser: Browser, server: ServerProcess,
           request: pytest.FixtureRequest) -> Iterator[People]:
    """people("alice") → a Person on the chat page, in a context of their own."""
    made: list[Person] = []
    folder = OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)

    def make(name: str, viewport: ViewportSize | None = None, **context_args: Any) -> Person:
        context = browser.new_context(viewport=viewport or DESKTOP, **context_args)
        person = Person(name, context, server.base_url)
        person.folder = folder
        made.append(person)
        return person

    yield make
    for person in made:  # all pictures first: closing one page changes the others'
        with contextlib.suppress(Exception):  # a screenshot is a record, not a check
            person.screenshot(folder)
    for person in made:
        person.context.close()
