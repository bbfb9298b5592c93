"""Webhooks of rooms: who may manage them, and posting what an incoming one receives.

A room's owners and the server's admins create, list and revoke its hooks; anyone else is
refused, and for a private room they are not in, told there is no such room (as everywhere,
chat/rooms/access.py). An incoming hook's post goes the way a person's message does: stored,
then published, so every node's sockets and the history have it (chat/delivery/sending.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chat.accounts.base import AccountStore
from chat.accounts.model import Account, server_admin
from chat.config import Settings
from chat.delivery.sending import Messages
from chat.hooks.counters import HookCounters
from chat.hooks.outgoing import OutgoingHooks
from chat.hooks.slack import PayloadError, payload_text
from chat.hooks.store import Hook, HookStore
from chat.limits import TokenBucket
from chat.people.identity import avatar_for
from chat.people.names import name_key
from chat.protocol.fields import check_username
from chat.protocol.parse import ProtocolError, check_room
from chat.protocol.text import forbidden_control
from chat.rooms.store import RoomStore
from chat.store.base import StoreError

log = logging.getLogger("chat.hooks")

TRIGGERS_MAX = 10  # trigger words per outgoing hook: a few commands, not a vocabulary
TRIGGER_MAX_CHARS = 32
URL_MAX_CHARS = 2000  # what browsers and most servers take in a request line
# Live hooks per room: every message of the room is matched against its outgoing ones, and a
# room's integrations are a handful; a bound keeps an owner from filling the table.
HOOKS_PER_ROOM = 50
# Posting as an account's name is never allowed: such a name gets this after it.
BOT_SUFFIX = " (bot)"


@dataclass
class HookError(Exception):
    """A refusal: the HTTP status, and the code and reason of the JSON error body."""

    status: int
    code: str
    reason: str
    retry_after: int | None = None


def now_ms() -> int:
    return int(time.time() * 1000)


class Webhooks:
    """Managing hooks (API and admin command) and receiving incoming posts, on one node."""

    def __init__(self, settings: Settings, accounts: AccountStore, messages: Messages,
                 counters: HookCounters | None = None) -> None:
        self.settings = settings
        self.accounts = accounts
        self.messages = messages
        self.store = HookStore(accounts)
        self.rooms = RoomStore(accounts)
        self.counters = counters if counters is not None else HookCounters()
        self.outgoing = OutgoingHooks(settings, self.store, self.counters, self._reply)
        self._buckets: dict[str, TokenBucket] = {}  # per incoming hook id, on this node

    # Management

    async def authorize(self, account: Account | None, raw_room: str) -> str:
        """The room's name if `account` (None: the admin command) may manage its hooks."""
        try:
            room = check_room(raw_room)
        except ProtocolError as exc:
            raise HookError(400, "invalid_room", exc.reason) from None
        try:
            access = await self.rooms.access(room, None if account is None else account.id,
                                             [], now_ms())
            admin = account is None or await self._is_admin(account)
        except StoreError:
            raise HookError(503, "store_failed", "the rooms cannot be read now; try again "
                            "shortly") from None
        info = access.room
        if info is None or (info.visibility == "private" and access.role is None
                            and not admin):
            raise HookError(404, "no_such_room", f"there is no room {room!r}")
        if access.role != "owner" and not admin:
            raise HookError(403, "forbidden", f"only the owners of {room!r} (or a server "
                            "admin) may manage its webhooks")
        return room

    async def _is_admin(self, account: Account) -> bool:
        fresh = await self.accounts.account_by_id(account.id)  # a demotion counts at once
        # Scopes None: every caller is a session or a token with the `admin` scope (the API
        # routes ask a token for it: handlers/api/webhooks.py), so the account's rights stand.
        return server_admin(fresh, None)

    @staticmethod
    def check_name(raw: str) -> str:
        try:
            return check_username(raw)
        except ProtocolError as exc:
            raise HookError(400, "invalid_name", exc.reason.replace("username", "name")) \
                from None

    @staticmethod
    def check_outgoing(url: str, triggers: list[str]) -> tuple[str, tuple[str, ...]]:
        """The URL and trigger words, or HookError naming what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname \
                or len(url) > URL_MAX_CHARS:
            raise HookError(400, "invalid_url", f"the url {url[:100]!r} must be http(s)://"
                            f"host[:port]/path, at most {URL_MAX_CHARS:,} characters")
        if len(triggers) > TRIGGERS_MAX:
            raise HookError(400, "invalid_triggers", f"{len(triggers)} trigger words; the "
                            f"limit is {TRIGGERS_MAX}")
        for word in triggers:
            if not word or len(word) > TRIGGER_MAX_CHARS or any(c.isspace() for c in word):
                raise HookError(400, "invalid_triggers", f"the trigger {word[:40]!r} must be "
                                f"one word of 1 to {TRIGGER_MAX_CHARS} characters")
        return url, tuple(triggers)

    async def create_incoming(self, account: Account | None, room: str,
                              name: str) -> tuple[Hook, str]:
        """A new incoming hook of the room and its secret (shown once)."""
        room = await self.authorize(account, room)
        name = self.check_name(name)
        await self._check_room_count(room)
        try:
            return await self.store.create_incoming(room, name, _id(account), now_ms())
        except StoreError:
            raise HookError(503, "store_failed", "the webhook could not be saved") from None

    async def create_outgoing(self, account: Account | None, room: str, name: str, url: str,
                              triggers: list[str]) -> Hook:
        """A new outgoing hook of the room (its signing key is in the returned hook)."""
        room = await self.authorize(account, room)
        name = self.check_name(name)
        url, words = self.check_outgoing(url, triggers)
        await self._check_room_count(room)
        try:
            hook = await self.store.create_outgoing(room, name, url, words, _id(account),
                                                    now_ms())
        except StoreError:
            raise HookError(503, "store_failed", "the webhook could not be saved") from None
        await self.outgoing.refresh()
        return hook

    async def _check_room_count(self, room: str) -> None:
        try:
            count = len(await self.store.of_room(room))
        except StoreError:
            raise HookError(503, "store_failed", "the webhooks cannot be read now") from None
        if count >= HOOKS_PER_ROOM:
            raise HookError(409, "too_many_webhooks", f"{room!r} has {count} webhooks; the "
                            f"limit is {HOOKS_PER_ROOM}: revoke one first")

    async def list(self, account: Account | None, room: str) -> list[Hook]:
        room = await self.authorize(account, room)
        try:
            return await self.store.of_room(room)
        except StoreError:
            raise HookError(503, "store_failed", "the webhooks cannot be read now") from None

    async def revoke(self, account: Account | None, hook_id: str) -> Hook:
        """Revoke a live hook; 404 for one that does not exist or is not the caller's to see."""
        missing = HookError(404, "no_such_webhook", f"there is no webhook {hook_id[:40]!r}")
        try:
            hook = await self.store.by_id(hook_id)
        except StoreError:
            raise HookError(503, "store_failed", "the webhooks cannot be read now") from None
        if hook is None:
            raise missing
        try:
            await self.authorize(account, hook.room)
        except HookError as exc:
            if exc.status == 404:
                raise missing from None
            raise
        try:
            await self.store.revoke(hook.id, now_ms())
        except StoreError:
            raise HookError(503, "store_failed", "the webhook could not be revoked") from None
        if hook.kind == "outgoing":
            await self.outgoing.refresh()
        return hook

    # Incoming posts

    async def receive(self, secret: str, payload: Any) -> dict[str, Any]:
        """Post a Slack-format payload through the hook with this secret; the message event."""
        try:
            hook = await self.store.by_secret(secret)
        except StoreError:
            raise HookError(503, "store_failed", "the webhooks cannot be read now") from None
        if hook is None:
            self.counters.posts.labels("not_found").inc()
            raise HookError(404, "no_such_webhook", "there is no webhook at this address")
        bucket = self._buckets.get(hook.id)
        if bucket is None:
            bucket = self._buckets[hook.id] = TokenBucket(
                self.settings.webhook_rate, self.settings.webhook_burst, time.monotonic())
        if not bucket.take(time.monotonic()):
            self.counters.posts.labels("rate_limited").inc()
            raise HookError(429, "rate_limited", f"more than {self.settings.webhook_burst} "
                            f"posts at once or {self.settings.webhook_rate:g} per second on "
                            "average through this webhook; slow down",
                            retry_after=max(1, round(1 / self.settings.webhook_rate)))
        try:
            text, name = self._content(hook, payload)
            name = await self._unclaimed(name)
            stored = await self.messages.post_as_bot(
                hook.room, name, avatar_for(self.settings.avatars, None, name), text)
        except HookError:
            self.counters.posts.labels("refused").inc()
            raise
        except ProtocolError as exc:  # broker_down, store_failed
            self.counters.posts.labels("refused").inc()
            raise HookError(503, exc.code, exc.reason) from None
        self.counters.posts.labels("posted").inc()
        return {"id": stored.id, "room": stored.conversation, "username": stored.username,
                "text": stored.text, "ts": stored.ts, "bot": True}

    def _content(self, hook: Hook, payload: Any) -> tuple[str, str]:
        if not isinstance(payload, dict):
            raise HookError(400, "invalid_payload", "the payload must be a JSON object")
        try:
            text = payload_text(payload)
        except PayloadError as exc:
            raise HookError(400, "invalid_payload", str(exc)) from None
        text = text.replace("\r\n", "\n")
        control = forbidden_control(text)
        if control is not None:
            raise HookError(400, "invalid_text", f"the text contains the control character "
                            f"U+{ord(control):04X}; only newline and tab are allowed")
        limit = self.settings.webhook_max_text_chars
        if len(text) > limit:
            raise HookError(400, "too_long", f"the text is {len(text):,} characters; the "
                            f"limit is {limit:,} (--webhook-max-text-chars)")
        username = payload.get("username")
        name = self.check_name(username) if isinstance(username, str) and username.strip() \
            else hook.name
        return text, name

    async def _unclaimed(self, name: str) -> str:
        """The name, with BOT_SUFFIX if an account holds it: a hook never passes for one."""
        try:
            taken = await self.accounts.account_by_name_key(name_key(name))
        except StoreError:
            raise HookError(503, "store_failed", "the accounts cannot be read now") from None
        return name + BOT_SUFFIX if taken is not None else name

    async def _reply(self, hook: Hook, text: str) -> bool:
        """An outgoing hook's answer, posted into its room under its name (cut at
        --max-text-chars; with its control characters, not at all)."""
        text = text[:self.settings.max_text_chars].replace("\r\n", "\n")
        if forbidden_control(text) is not None:
            log.warning("outgoing webhook %s answered a text with control characters: not "
                        "posted", hook.id)
            return False
        try:
            name = await self._unclaimed(hook.name)
            await self.messages.post_as_bot(hook.room, name,
                                            avatar_for(self.settings.avatars, None, name), text)
        except (HookError, ProtocolError) as exc:  # the database or the broker, for now
            log.warning("the answer of outgoing webhook %s could not be posted: %s", hook.id,
                        exc.reason)
            return False
        return True

    async def close(self) -> None:
        await self.outgoing.close()


def _id(account: Account | None) -> int | None:
    return None if account is None else account.id
