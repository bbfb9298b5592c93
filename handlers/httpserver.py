"""The HTTP server: time limits, a bound on unfinished connections per address, calm accepts."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from chat.addresses import address_group
from chat.config import Settings
from handlers.tornado_internals import listen_with

log = logging.getLogger("chat.http")

# Only the API's small JSON bodies (a name and a password) are read, so a few KiB is plenty
# and a large one is refused (400) from its Content-Length, before it is read. A route that
# takes uploads must stream its body (@stream_request_body) and set its own limit with
# request.connection.set_max_body_size().
# 16 KiB: the largest request a route takes is a sign-in or registration with the longest
# password (1,024 characters), which JSON-escaped as surrogate pairs (12 bytes each) is 12 KiB.
MAX_BODY_BYTES = 16 * 1024
# accept() failing for want of a descriptor or memory leaves the listening socket readable:
# retried at once it spins the loop. Accepts pause this long instead (short, so the server
# serves again soon after descriptors are freed).
ACCEPT_PAUSE_S = 0.5
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Connections taken per readable event, as Tornado's own accept handler does, so that a flood
# of connections cannot starve the rest of the loop.
ACCEPT_BATCH = 128


class Acceptor:
    """Accepts connections on one listening socket; pauses, logging once, when accept fails."""

    def __init__(self, sock: socket.socket, callback: Callable[[socket.socket, Any], None]) -> None:
        self.sock = sock
        self.callback = callback
        self.io_loop = IOLoop.current()
        self.failures = 0  # accepts refused for want of resources since the last that worked
        self._stopped = False
        self._resume_handle: object | None = None
        self.io_loop.add_handler(sock, self._on_readable, IOLoop.READ)

    def _on_readable(self, fd: Any, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._stopped:
                return
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue  # closed by the client while it waited in the backlog
            except OSError as exc:
                if exc.errno not in RESOURCE_ERRNOS:
                    raise
                self._pause(exc)
                return
            if self.failures:
                log.warning("accepting connections again after %d failed attempts",
                            self.failures)
                self.failures = 0
            self.callback(connection, address)

    def _pause(self, exc: OSError) -> None:
        self.failures += 1
        if self.failures == 1:
            log.error("cannot accept connections: %s; trying again every %g s",
                      exc.strerror, ACCEPT_PAUSE_S)
        self.io_loop.remove_handler(self.sock)
        self._resume_handle = self.io_loop.call_later(ACCEPT_PAUSE_S, self._resume)

    def _resume(self) -> None:
        self._resume_handle = None
        if not self._stopped:
            self.io_loop.add_handler(self.sock, self._on_readable, IOLoop.READ)

    def stop(self) -> None:
        """Stop accepting (idempotent); TCPServer.stop() calls it before closing the socket."""
        if self._stopped:
            return
        self._stopped = True
        if self._resume_handle is not None:
            self.io_loop.remove_timeout(self._resume_handle)
        else:
            self.io_loop.remove_handler(self.sock)


class _Unfinished:
    """One HTTP connection that is not a WebSocket (yet)."""

    __slots__ = ("deadline", "group", "idle", "requests")

    def __init__(self, group: str, deadline: object) -> None:
        self.group = group
        self.deadline: object | None = deadline  # its waiting request's header or idle timeout
        self.requests = 0
        self.idle = False  # kept alive, waiting for the headers of its next request


class ChatHTTPServer(HTTPServer):
    """Tornado's HTTPServer, with the limits every connection gets before it is a WebSocket.

    A new connection must send its first request's headers within `header_timeout`; a kept-alive
    one its next within `idle_timeout`. At most `max_unfinished` connections per address (IPv6:
    per /64) may be open before becoming WebSockets: past it the address's oldest idle
    kept-alive connection is closed to make room, or, if none, the new one. Without xheaders
    only: behind a proxy every connection comes from the proxy, which reads whole requests
    before it passes them on.
    """

    def initialize(self, *args: Any, header_timeout: float = 3600.0, max_unfinished: int = 0,
                   **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.header_timeout = header_timeout
        self.idle_timeout = self.conn_params.header_timeout or header_timeout
        # Tornado would bound each request's headers with a timer of its own (gen.with_timeout:
        # a timeout and two futures per request); the deadlines below bound the same waits.
        self.conn_params.header_timeout = None
        self.max_unfinished = max_unfinished
        self.unfinished: dict[IOStream, _Unfinished] = {}
        self._by_group: dict[str, dict[IOStream, _Unfinished]] = {}
        self._warned: set[str] = set()  # groups told about once, until they have none left
        self.refused = 0

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        listen_with(self, sockets, lambda sock, on_connection: Acceptor(sock, on_connection).stop)

    def handle_stream(self, stream: IOStream, address: Any) -> None:
        peer = address[0] if isinstance(address, tuple) and address else ""
        group = address_group(peer if isinstance(peer, str) else "")
        streams = self._by_group.setdefault(group, {})
        full = self.max_unfinished and not self.xheaders and len(streams) >= self.max_unfinished
        if full and not self._close_oldest_idle(streams):
            self._refuse(stream, group)
            return
        deadline = IOLoop.current().call_later(self.header_timeout, stream.close)
        record = _Unfinished(group, deadline)
        streams[stream] = record
        self.unfinished[stream] = record
        super().handle_stream(stream, address)

    def _close_oldest_idle(self, streams: dict[IOStream, _Unfinished]) -> bool:
        for stream, record in streams.items():  # oldest first
            if record.idle:
                stream.close()
                return True
        return False

    def _refuse(self, stream: IOStream, group: str) -> None:
        self.refused += 1
        if group not in self._warned:
            self._warned.add(group)
            log.warning("closing new connections from %s: it has %d unfinished HTTP "
                        "connections, the limit per address (--max-unfinished-per-ip)",
                        group, self.max_unfinished)
        if not self._by_group[group]:
            del self._by_group[group]
        stream.close()

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection
                      ) -> httputil.HTTPMessageDelegate:
        delegate = super().start_request(server_conn, request_conn)
        stream: IOStream | None = getattr(server_conn, "stream", None)
        record = None if stream is None else self.unfinished.get(stream)
        if stream is None or record is None:
            return delegate
        record.requests += 1
        record.idle = record.requests > 1
        if record.idle:
            record.deadline = IOLoop.current().call_later(self.idle_timeout, stream.close)
        return _HeadersSeen(delegate, record)

    def on_close(self, server_conn: object) -> None:
        """The connection closed or became a WebSocket: it is unfinished no more."""
        super().on_close(server_conn)
        stream = getattr(server_conn, "stream", None)
        record = self.unfinished.pop(stream, None)  # type: ignore[arg-type]
        if record is None:
            return
        if record.deadline is not None:
            IOLoop.current().remove_timeout(record.deadline)
        streams = self._by_group[record.group]
        del streams[stream]  # type: ignore[arg-type]
        if not streams:
            del self._by_group[record.group]
            self._warned.discard(record.group)


class _HeadersSeen(httputil.HTTPMessageDelegate):
    """Passes a request on to the application, noting when its headers have all arrived."""

    __slots__ = ("delegate", "record")

    def __init__(self, delegate: httputil.HTTPMessageDelegate, record: _Unfinished) -> None:
        self.delegate = delegate
        self.record = record

    def headers_received(
        self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        record = self.record
        record.idle = False
        if record.deadline is not None:
            IOLoop.current().remove_timeout(record.deadline)
            record.deadline = None
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()


def chat_http_server(app: httputil.HTTPServerConnectionDelegate, settings: Settings
                     ) -> ChatHTTPServer:
    """The server `serve()` listens with, and the tests' in-process server."""
    return ChatHTTPServer(
        app, xheaders=settings.xheaders,
        header_timeout=settings.header_timeout,
        # Tornado's idle_connection_timeout bounds each later request's wait and headers.
        idle_connection_timeout=settings.idle_timeout,
        body_timeout=settings.header_timeout,
        max_body_size=MAX_BODY_BYTES,
        max_unfinished=settings.max_unfinished_per_ip,
    )
