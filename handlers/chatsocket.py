"""The /ws WebSocketHandler: open / on_message / on_close -> chat.hub, frames out via Outbox."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

from tornado.httputil import HTTPHeaders
from tornado.util import ObjectDict
from tornado.websocket import WebSocketHandler

from chat.config import Settings
from chat.node.hub import Hub
from chat.people.connections import Auth, Client
from chat.protocol.frame import Frame, Frames
from chat.store.base import StoreError
from handlers.keepalive import PING_FRAME, Keepalive
from handlers.outbox import Flusher, Outbox
from handlers.tornado_internals import (
    WebSocketParams,
    drop_request_cookies,
    drop_response_state,
)
from handlers.wsprotocol import WINDOW_BITS, StrictProtocol13

log = logging.getLogger("chat.socket")

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
_NO_HEADERS = HTTPHeaders()  # shared by every upgraded connection; never written to
_NO_UI = ObjectDict()
SESSION_COOKIE = "chat_session"  # the page's session (set by the HTTP API, /api/v1/sessions)


def bearer(headers: HTTPHeaders) -> str | None:
    """The token of an `Authorization: Bearer` header: a session's, or an API token
    (`chat_pat_...`, chat/node/signins.py)."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def session_token(headers: HTTPHeaders, cookie: str | None) -> str | None:
    """The token an upgrade carries: `Authorization: Bearer`, else the session cookie."""
    return bearer(headers) or cookie or None


class ChatSocket(WebSocketHandler):
    """One chat connection; the Go tutorial's `clients` map and broadcast loop live in `hub`."""

    hub: Hub
    auth: Auth | None = None  # the upgrade's session, until open() hands it to the client
    client: Client | None = None
    outbox: Outbox | None = None

    def initialize(
        self, hub: Hub, flusher: Flusher, keepalive: Keepalive, settings: Settings
    ) -> None:
        self.hub = hub
        self.flusher = flusher
        self.keepalive = keepalive
        self.settings_ = settings
        self.awaiting_pong = False

    def prepare(self) -> Awaitable[None] | None:
        # Here rather than in an overridden get(): a coroutine wrapping get() would stay parked,
        # holding memory, for the whole life of every connection.
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            return None
        refusal = self.hub.refusal(self.request.remote_ip or "")
        if refusal is not None:
            status, reason = refusal
            self.set_status(status)
            self.finish(reason)
            return None
        token = session_token(self.request.headers, self.get_cookie(SESSION_COOKIE))
        # A coroutine only for an upgrade that carries a session: a guest's costs nothing more.
        return None if token is None else self._authenticate(token)

    async def _authenticate(self, token: str) -> None:
        """Refuse the upgrade (401) unless the token opens a live session; else keep its
        account for open(). The origin is checked after this, by get() (403)."""
        try:
            self.auth = await self.hub.authenticate(token)
        except StoreError as exc:
            log.warning("could not check a session at an upgrade: %s", exc)
            self.set_status(503)
            self.finish("the accounts cannot be read now; try again shortly")
            return
        if self.auth is None:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.finish("the session or API token is unknown, expired, ended or revoked: "
                        "sign in again (or connect without it, as a guest)")

    def check_origin(self, origin: str) -> bool:
        """The page's own host, or one of --allowed-origins; any origin for an upgrade that
        carries `Authorization: Bearer` (a program's: a browser never sends that header on an
        upgrade, so a page elsewhere cannot ride a visitor's credentials with it)."""
        if bearer(self.request.headers):
            return True
        if origin.rstrip("/").lower() in self.settings_.allowed_origins_set:
            return True
        return urlsplit(origin).netloc.lower() == self.request.host.lower()

    def get_compression_options(self) -> dict[str, Any] | None:
        if not self.settings_.compression:
            return None
        return {"mem_level": self.settings_.compression_mem_level,
                WINDOW_BITS: self.settings_.compression_window_bits}

    def get_websocket_protocol(self) -> StrictProtocol13 | None:
        if self.request.headers.get("Sec-WebSocket-Version") != "13":
            return None
        params = WebSocketParams(
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_message_size=self.max_message_size,
            compression_options=self.get_compression_options(),
        )
        return StrictProtocol13(self, False, params)

    def open(self, *args: str, **kwargs: str) -> Awaitable[None]:
        self.set_nodelay(True)  # Nagle added ~30 ms to p99 in a literal port
        assert self.ws_connection is not None
        assert self.ws_connection.stream is not None
        self.outbox = Outbox(self.ws_connection.stream, self.flusher,
                             self.settings_.max_queue_bytes, self._evict,
                             self.settings_.max_reply_queue_bytes)
        if not (isinstance(self.ws_connection, StrictProtocol13)
                and self.ws_connection.deflating):
            # The fan-out's hot path: the hub's send() goes straight to the outbox.
            self.send = self.outbox.send  # type: ignore[method-assign]
        self._release_upgrade_state()
        self.keepalive.add(self)
        # Popped: the client holds it, and a guest's handler never grows an entry for it.
        auth = self.__dict__.pop("auth", None)
        self.client, ready = self.hub.connect(self, self.request.remote_ip or "", auth)
        return ready

    def _release_upgrade_state(self) -> None:
        """Drop what only the HTTP upgrade needed: every idle connection would keep it."""
        request = self.request
        # Emptied in place too: WebSocketHandler.get(), parked for the connection's life,
        # holds them in a local.
        request.headers.clear()
        request.headers = _NO_HEADERS
        request.arguments = request.query_arguments = request.body_arguments = {}
        request.files = {}
        # The HTTP connections the upgrade came over are done with (the stream is detached),
        # but they keep the request's start line and headers, their request loop's task and
        # futures.
        request.connection = request.server_connection = None
        drop_request_cookies(request)
        drop_response_state(self, _NO_HEADERS)
        self.ui = _NO_UI
        self.path_kwargs = self.open_kwargs = {}
        self.path_args = []
        # Tornado has just added attributes to this handler; a compact copy of its __dict__
        # is smaller than the one that grew.
        self.__dict__ = dict(self.__dict__)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        if isinstance(message, bytes):
            self.close(CLOSE_UNSUPPORTED_DATA, "binary frames are not accepted; send JSON text")
            return None
        assert self.client is not None
        return self.hub.receive(self.client, message)

    def on_close(self) -> None:
        self.keepalive.discard(self)
        if self.outbox is not None:
            self.outbox.closed = True
        if self.client is not None:
            self.hub.disconnect(self.client)

    # The Peer interface the hub uses.

    def send(self, frame: Frame) -> None:
        """Send a frame compressed for this client (permessage-deflate agreed).

        Otherwise open() points `send` straight at the outbox.
        """
        if self.outbox is not None and not self.outbox.closed:
            self.outbox.push(self._deflated(frame))

    def send_frames(self, batch: Frames) -> None:
        """Send frames in order, as send() would one by one."""
        self._queue(batch, reply=False)

    def reply(self, frame: Frame) -> None:
        """Send a frame the client asked for (compressed if `send` is).

        Not pointed at the outbox in open() as `send` is: replies are rare, and the bound method
        would cost every idle connection ~100 bytes.
        """
        outbox = self.outbox
        if outbox is None or outbox.closed:
            return
        if isinstance(self.ws_connection, StrictProtocol13) and self.ws_connection.deflating:
            outbox.push_reply(self._deflated(frame))
        else:
            outbox.reply(frame)

    def replies(self, batch: Frames) -> None:
        """Send frames the client asked for, in order, as reply() would one by one."""
        self._queue(batch, reply=True)

    def _queue(self, batch: Frames, *, reply: bool) -> None:
        """Queue frames in order: one queueing of their joined bytes (as a reply: the same
        reply range one by one would make), or each compressed in turn."""
        outbox = self.outbox
        if outbox is None or outbox.closed:
            return
        push = outbox.push_reply if reply else outbox.push
        if isinstance(self.ws_connection, StrictProtocol13) and self.ws_connection.deflating:
            for frame in batch.frames:
                push(self._deflated(frame))
        elif batch.wire:
            push(batch.wire)

    def _deflated(self, frame: Frame) -> bytes:
        # Compressed as it is queued: the compressor's state follows the order of sending.
        assert isinstance(self.ws_connection, StrictProtocol13)
        return self.ws_connection.deflated_frame(frame.payload)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self.outbox is not None:
            self.outbox.flush()  # frames queued before the close go out before it
            # and nothing after it (RFC 6455 5.5.1): e.g. the leave notices that other members'
            # closes publish while this one waits for its peer's answer during a shutdown.
            self.outbox.closed = True
        super().close(code, reason)

    # Keepalive (handlers/keepalive.py)

    def send_ping(self) -> None:
        if self.outbox is not None:
            self.outbox.push(PING_FRAME)

    def on_pong(self, data: bytes) -> None:
        self.awaiting_pong = False

    def ping_timed_out(self) -> None:
        """Close a peer that stopped answering, without waiting for its close in turn."""
        log.info("closing %s: no pong within %g s", self.request.remote_ip,
                 self.settings_.ping_timeout)
        if isinstance(self.ws_connection, StrictProtocol13):
            self.ws_connection.close(CLOSE_NORMAL, "ping timed out")
            self.ws_connection.abort()

    def _evict(self) -> None:
        """Drop a client that stopped reading: never wait for it, never let it hold memory."""
        self.hub.evicted()
        log.info("dropped %s: more than %d bytes queued", self.request.remote_ip,
                 self.settings_.max_queue_bytes)
        if isinstance(self.ws_connection, StrictProtocol13):
            self.ws_connection.abort()
