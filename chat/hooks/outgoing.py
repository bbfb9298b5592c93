"""Outgoing webhooks: a room message that starts with a hook's trigger word (or mentions its
name) is POSTed, signed, to the hook's URL; a JSON answer with `text` is posted back as the hook.

The send path only hands the message over (`message()`, after the store committed it, on the
node that stored it: one call per message in a cluster). Calls wait in a bounded queue and are
made by a few workers; a full queue drops the call and counts it, so the chat never waits on a
webhook. A 5xx, a timeout or a connection failure is tried again after --webhook-backoff
seconds, doubled each time, at most --webhook-retries times; the waits are timers, not workers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from chat.config import Settings
from chat.hooks.counters import HookCounters
from chat.hooks.guard import GuardedResolver, RefusedAddress
from chat.hooks.store import Hook, HookStore
from chat.protocol.mentions import mentions, pattern
from chat.record import StoredMessage
from chat.store.base import StoreError

log = logging.getLogger("chat.hooks")

WORKERS = 4  # calls in flight at once per node: each holds a socket; a slow receiver holds one
# A reply is a short JSON object ({"text": ...}); anything larger is no reply of ours.
REPLY_MAX_BYTES = 64 * 1024
# How old the node's list of outgoing hooks may be (s): a hook made or revoked on another node
# starts or stops calling within this; on this node at once.
REFRESH_S = 5.0
SIGNATURE_HEADER = "X-Chat-Signature"
TIMESTAMP_HEADER = "X-Chat-Timestamp"
USER_AGENT = "SimpleChat-Webhook/1"


def signature(key: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the HMAC-SHA256 of `timestamp.body`."""
    mac = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def trigger_of(hook: Hook, text: str) -> str | None:
    """The trigger word the text starts with, `@name` if it mentions the hook, else None."""
    words = text.split(maxsplit=1)
    first = words[0].casefold() if words else ""
    for trigger in hook.triggers:
        if first == trigger.casefold():
            return trigger
    if mentions(text, pattern(hook.name)):  # as a person is mentioned: in prose, not in code
        return "@" + hook.name
    return None


@dataclass(frozen=True, slots=True)
class Call:
    hook: Hook
    body: bytes
    attempt: int = 0


class OutgoingHooks:
    """Matches room messages against the room's outgoing hooks and calls them."""

    def __init__(self, settings: Settings, store: HookStore, counters: HookCounters,
                 reply: Callable[[Hook, str], Awaitable[bool]]) -> None:
        self.settings = settings
        self.store = store
        self.counters = counters
        self.reply = reply
        self.client = AsyncHTTPClient(force_instance=True, max_clients=WORKERS,
                                      resolver=GuardedResolver(
                                          allow_private=settings.webhook_allow_private),
                                      max_body_size=REPLY_MAX_BYTES)
        self._queue: asyncio.Queue[Call] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._by_room: dict[str, list[Hook]] = {}
        self._loaded_at = float("-inf")
        self._loading: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """Read the live outgoing hooks again (at start, and after a change on this node)."""
        try:
            hooks = await self.store.of_room(None, "outgoing")
        except StoreError as exc:
            log.warning("could not read the outgoing webhooks: %s", exc)
            return
        by_room: dict[str, list[Hook]] = {}
        for hook in hooks:
            by_room.setdefault(hook.room, []).append(hook)
        self._by_room = by_room
        self._loaded_at = time.monotonic()

    def message(self, stored: StoredMessage) -> None:
        """A room message a person sent, just stored: queue a call to each hook it triggers."""
        if stored.bot or stored.to is not None:  # a hook's own post never triggers a hook
            return
        if time.monotonic() - self._loaded_at <= REFRESH_S:
            self._match(stored)
            return
        # The list is old (or was never read: a node just started): match once it is read.
        if self._loading is None:
            self._loading = asyncio.ensure_future(self.refresh())
            self._loading.add_done_callback(self._loaded)
        self._loading.add_done_callback(lambda _: self._match(stored))

    def _loaded(self, _: object) -> None:
        self._loading = None

    def _match(self, stored: StoredMessage) -> None:
        for hook in self._by_room.get(stored.conversation, ()):
            trigger = trigger_of(hook, stored.text)
            if trigger is not None:
                self._enqueue(Call(hook, json.dumps({
                    "hook_id": hook.id, "room": stored.conversation, "id": stored.id,
                    "username": stored.username, "guest": stored.guest, "text": stored.text,
                    "ts": stored.ts, "trigger": trigger}).encode()))

    def _enqueue(self, call: Call) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue(self.settings.webhook_queue)
            self._workers = [asyncio.ensure_future(self._work()) for _ in range(WORKERS)]
        try:
            self._queue.put_nowait(call)
        except asyncio.QueueFull:
            self.counters.dropped.inc()
            log.warning("outgoing webhook %s (%s) not called: %d calls already wait "
                        "(--webhook-queue)", call.hook.id, call.hook.room,
                        self.settings.webhook_queue)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            call = await self._queue.get()
            try:
                await self._call(call)
            except Exception:  # a worker must outlive any one call's surprise
                log.exception("outgoing webhook %s failed unexpectedly", call.hook.id)

    async def _call(self, call: Call) -> None:
        hook = call.hook
        assert hook.url is not None  # an outgoing hook has both
        assert hook.signing_key is not None
        timestamp = str(int(time.time()))
        request = HTTPRequest(
            hook.url, method="POST", body=call.body, follow_redirects=False,
            request_timeout=self.settings.webhook_timeout,
            connect_timeout=self.settings.webhook_timeout, user_agent=USER_AGENT,
            headers={"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                     SIGNATURE_HEADER: signature(hook.signing_key, timestamp, call.body),
                     "X-Chat-Hook": hook.id})
        self.counters.calls.inc()
        try:
            response = await self.client.fetch(request)
        except RefusedAddress as exc:
            self._give_up(call, "refused_address", str(exc))
            return
        except HTTPClientError as exc:
            if exc.code == 599:  # Tornado's code for a timeout
                self._retry_or_give_up(call, "timeout", str(exc))
            elif exc.code >= 500:
                self._retry_or_give_up(call, "status", f"HTTP {exc.code}")
            else:
                self._give_up(call, "status", f"HTTP {exc.code}")
            return
        except OSError as exc:  # refused, reset, unresolvable
            self._retry_or_give_up(call, "error", str(exc) or type(exc).__name__)
            return
        await self._answer(hook, response)

    def _retry_or_give_up(self, call: Call, reason: str, detail: str) -> None:
        if call.attempt >= self.settings.webhook_retries:
            self._give_up(call, reason, f"{detail}, after {call.attempt + 1} tries")
            return
        self.counters.retries.inc()
        delay = self.settings.webhook_backoff * 2 ** call.attempt
        again = Call(call.hook, call.body, call.attempt + 1)
        self._timers.add(asyncio.get_running_loop().call_later(delay, self._again, again))

    def _again(self, call: Call) -> None:
        self._timers = {timer for timer in self._timers if not timer.cancelled()
                        and timer.when() > asyncio.get_running_loop().time()}
        self._enqueue(call)

    def _give_up(self, call: Call, reason: str, detail: str) -> None:
        self.counters.failures.labels(reason).inc()
        # The receiver's fault or a refused address, never this server's: a warning. The host
        # only: a URL's path or query often holds the receiver's own secret.
        log.warning("outgoing webhook %s (%s) to %s failed: %s", call.hook.id, call.hook.room,
                    urlsplit(call.hook.url or "").hostname, detail)

    async def _answer(self, hook: Hook, response: HTTPResponse) -> None:
        """Post the `text` of a JSON answer into the hook's room; ignore any other answer."""
        if not response.body or "json" not in response.headers.get("Content-Type", ""):
            return
        try:
            answer = json.loads(response.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("outgoing webhook %s answered with malformed JSON", hook.id)
            return
        text = answer.get("text") if isinstance(answer, dict) else None
        if isinstance(text, str) and text.strip() and await self.reply(hook, text):
            self.counters.replies.inc()

    async def close(self) -> None:
        """Stop calling: workers, waiting retries and the HTTP client."""
        for timer in self._timers:
            timer.cancel()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._loading is not None:
            await asyncio.gather(self._loading, return_exceptions=True)
        self.client.close()
