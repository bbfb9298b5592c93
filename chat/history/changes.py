"""Edits and deletes of stored messages, checked here for every path (the socket's frames and
any other caller: they need no connection), then announced to every reader on every node.

Who may: the author edits (within `--edit-window`) and deletes its own message; in a room, its
owners and moderators and the server's admins delete any message (never edit it). A direct
conversation is its two parties' only: the other party can neither edit nor delete. Each change
takes its conversation's next change number (chat/store/base.py), so a client that was away
learns of it with `changes` (docs/protocol.md, "Edits, deletes and the change sequence").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chat.broker.base import Broker, BrokerError
from chat.delivery import channels
from chat.protocol import events
from chat.protocol.parse import ProtocolError
from chat.record import StoredMessage, dm_parties
from chat.store.base import HistoryStore, StoreError
from chat.store.reactions import TooManyReactions

log = logging.getLogger("chat.messages")

# Whether an actor may moderate (delete others' messages in) a room: chat/rooms/ decides.
Moderates = Callable[["Actor", str], Awaitable[bool]]
# Called with each deleted message once its text is gone (files of a message follow it).
OnDeleted = Callable[[StoredMessage], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: its party (people/identity.py), its name as shown, its account (None: guest),
    and its API token's scopes (None: a session; a token needs `admin` for server-admin rights,
    chat.accounts.model.server_admin)."""

    party: str
    name: str
    account_id: int | None = None
    scopes: tuple[str, ...] | None = None


class MessageChanges:
    """The `edit` and `delete` service: checks, stores, announces; returns the message as now."""

    def __init__(self, store: HistoryStore, broker: Broker, edit_window_s: float,
                 moderates: Moderates | None = None, max_reactions: int = 20) -> None:
        self.store = store
        self.broker = broker
        self.edit_window_s = edit_window_s  # 0: always
        self.moderates = moderates  # None: nobody moderates (a server without accounts)
        self.on_deleted: list[OnDeleted] = []
        self.max_reactions = max_reactions  # distinct emoji per message

    async def edit(self, actor: Actor, conversation: str, message_id: int, text: str, *,
                   request: str = "edit", **refs: Any) -> StoredMessage:
        """Replace the text of the actor's own message; the message as stored now."""
        found = await self._find(conversation, message_id, request, refs)
        if found.author is None or found.author != actor.party:
            raise ProtocolError("forbidden", "only its author may edit a message",
                                request=request, id=message_id, **refs)
        now = int(time.time() * 1000)
        age_s = (now - found.ts) / 1000
        if self.edit_window_s and age_s > self.edit_window_s:
            raise ProtocolError(
                "edit_window_passed", f"message {message_id} was sent {age_s:,.0f} s ago; "
                f"messages can be edited for {self.edit_window_s:,.0f} s (--edit-window)",
                request=request, id=message_id, limit=self.edit_window_s, **refs)
        changed = await self._write(self.store.edit(conversation, message_id, text, now),
                                    conversation, message_id, request, refs)
        await self._announce(changed, events.edited(changed), request, refs)
        return changed

    async def delete(self, actor: Actor, conversation: str, message_id: int, *,
                     request: str = "delete", **refs: Any) -> StoredMessage:
        """Delete a message for good (its text leaves the store); the tombstone."""
        found = await self._find(conversation, message_id, request, refs)
        own = found.author is not None and found.author == actor.party
        if not own and not (dm_parties(conversation) == [] and self.moderates is not None
                            and await self.moderates(actor, conversation)):
            raise ProtocolError("forbidden", "only its author (and in a room its owners, "
                                "moderators and the server's admins) may delete a message",
                                request=request, id=message_id, **refs)
        changed = await self._write(
            self.store.delete(conversation, message_id, int(time.time() * 1000)),
            conversation, message_id, request, refs)
        for hook in self.on_deleted:
            try:
                await hook(changed)
            except Exception:  # the text is gone all the same: readers must still be told
                log.exception("a hook on deleting message %d of %s failed", message_id,
                              conversation)
        await self._announce(changed, events.deleted(changed, actor.name), request, refs)
        return changed

    async def react(self, actor: Actor, conversation: str, message_id: int, emoji: str,
                    add: bool, *, request: str = "react", **refs: Any) -> StoredMessage:
        """Add (or take back) the actor's reaction on a message it can read (the caller
        checked that: a joined room, or a conversation key that holds the actor)."""
        try:
            changed = await self.store.react(conversation, message_id, emoji, actor.party,
                                             actor.name, add, self.max_reactions)
        except TooManyReactions as exc:
            raise ProtocolError(
                "too_many_reactions", f"message {message_id} has {exc.limit} distinct "
                f"reactions already, the limit (--max-reactions): add to one of them",
                request=request, id=message_id, limit=exc.limit, **refs) from None
        except StoreError as exc:
            log.warning("could not react to message %d of %s: %s", message_id, conversation,
                        exc)
            raise _store_failed(request, refs) from None
        if changed is None:
            raise ProtocolError("no_such_message", f"there is no message {message_id} there",
                                request=request, id=message_id, **refs)
        await self._announce(changed, events.reacted(changed), request, refs)
        return changed

    async def _find(self, conversation: str, message_id: int, request: str,
                    refs: dict[str, Any]) -> StoredMessage:
        try:
            found = await self.store.find(conversation, message_id)
        except StoreError as exc:
            log.warning("could not read message %d of %s: %s", message_id, conversation, exc)
            raise _store_failed(request, refs) from None
        if found is None or found.deleted is not None:
            raise ProtocolError("no_such_message", f"there is no message {message_id} there",
                                request=request, id=message_id, **refs)
        return found

    async def _write(self, writing: Awaitable[StoredMessage | None], conversation: str,
                     message_id: int, request: str, refs: dict[str, Any]) -> StoredMessage:
        try:
            changed = await writing
        except StoreError as exc:
            log.warning("could not %s message %d of %s: %s", request, message_id,
                        conversation, exc)
            raise _store_failed(request, refs) from None
        if changed is None:  # deleted meanwhile
            raise ProtocolError("no_such_message", f"there is no message {message_id} there",
                                request=request, id=message_id, **refs)
        return changed

    async def _announce(self, changed: StoredMessage, event: dict[str, Any], request: str,
                        refs: dict[str, Any]) -> None:
        """To the room's readers, or both parties' connections, on every node."""
        parties = dm_parties(changed.conversation)
        targets = ([channels.user(party) for party in sorted(set(parties))] if parties
                   else [channels.room(changed.conversation)])
        payload = (channels.user_event_payload(event) if parties
                   else channels.control_payload("notify", event=event))
        try:
            for channel in targets:
                await self.broker.publish(channel, payload)
        except BrokerError as exc:
            log.warning("could not announce a change on %s: %s", targets, exc)
            raise ProtocolError("broker_down", "stored, but the chat's other servers cannot be "
                                "reached now: readers learn of it when they ask for `changes`",
                                request=request, **refs) from None


def _store_failed(request: str, refs: dict[str, Any]) -> ProtocolError:
    return ProtocolError("store_failed", "the change could not be stored; nothing changed",
                         request=request, **refs)
