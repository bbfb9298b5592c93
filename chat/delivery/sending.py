"""Room and direct messages: stored first, then announced on the broker to every node."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from chat.broker.base import Broker, BrokerError
from chat.delivery import channels
from chat.files.attach import check_count, text_with_links, with_files
from chat.files.service import Files
from chat.files.store import FileRecord
from chat.history.replay import Replay
from chat.node.faults import Faults
from chat.node.status import Stats
from chat.people.connections import Client, User
from chat.people.directory import Directory
from chat.people.identity import ACCOUNT_PARTY, is_account_party
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.protocol.parse import Direct, Post, ProtocolError
from chat.record import Quote, StoredMessage, dm_key
from chat.roster.base import Roster
from chat.store.base import IDEMPOTENCY_WINDOW_MS, CidReused, HistoryStore, StoreError

log = logging.getLogger("chat.messages")


def check_broker(broker: Broker, request: str, **refs: Any) -> None:
    """ProtocolError('broker_down') while the broker cannot reach the other nodes."""
    if not broker.healthy:
        raise ProtocolError("broker_down", "the chat's other servers cannot be reached now; "
                            "nothing was sent, try again shortly", request=request, **refs)


class Messages:
    """Stores each message, then announces it; the sender's own copy is its acknowledgement.

    A new message is published once the store has it. A repeated `cid` is answered to its
    sender alone, with the original message; one the sender used for another conversation,
    with the error `cid_reused`.
    """

    def __init__(self, store: HistoryStore, broker: Broker, roster: Roster,
                 users: Directory, stats: Stats,
                 observe_store_latency: Callable[[float], None] | None = None,
                 faults: Faults | None = None) -> None:
        self.store = store
        self.broker = broker
        self.roster = roster
        self.users = users
        self.stats = stats
        # Seconds from append to durable, per message (chat/node/metrics.py's histogram).
        self._observe_store_latency = observe_store_latency
        self._faults = faults if faults is not None else Faults(None)  # tests' only
        # Reads replies' originals, hiding removed ones as history does (set by the hub).
        self.replay: Replay | None = None
        # Told of each new room message a person sent, once, on the node that stored it
        # (outgoing webhooks: chat/hooks/outgoing.py); never waits.
        self.on_room_message: Callable[[StoredMessage], None] | None = None
        # Uploads a message may carry (issue 18); None: this server takes no files.
        self.files: Files | None = None

    async def post(self, client: Client, user: User, cmd: Post) -> None:
        """A message to a room the client is in."""
        stored, created = await self.send_room(user, cmd.room, cmd.text, cmd.cid,
                                               reply_to=cmd.reply_to, files=cmd.files)
        if not created:
            client.peer.reply(Frame.of(events.message(stored)))  # the original acknowledgement

    async def send_room(self, user: User, room: str, text: str, cid: str | None, *,
                        bot: bool = False, reply_to: int | None = None,
                        files: tuple[str, ...] = ()) -> tuple[StoredMessage, bool]:
        """Store a message of `user` in `room`, then publish it to every node; (the message,
        True), or (the original, False) for a repeated cid (not published again). No socket
        needed: the HTTP API sends with it; the caller checks the room's access and the text
        (chat/node/actions.py). `bot`: the user is a bot account (marked so, and its messages
        call no outgoing webhook: no loops between bots)."""
        check_broker(self.broker, "message", cid=cid)
        records = await self._attachable(user, files, "message", cid)
        quote = await self._quote(room, reply_to, "message", cid)
        stored, created = await self._append(
            room, user, text_with_links(text, records) if records else text, cid, "message",
            bot=bot, reply_to=reply_to)
        stored = await self._quoted(stored, created, quote)
        if created:
            stored = await self._link(stored, records)
            try:
                await self._publish(channels.room(room), channels.message_payload(stored),
                                    "message", cid)
            finally:  # stored is sent: it reaches the other nodes later if not now
                if self.on_room_message is not None and not (bot or user.bot):
                    self.on_room_message(stored)
        return stored, created

    async def post_as_bot(self, room: str, name: str, avatar: str, text: str,
                          request: str = "webhook") -> StoredMessage:
        """A webhook's message to a room (chat/hooks/): stored marked `bot`, then announced,
        as a person's is; ProtocolError (broker_down, store_failed) if it could not be."""
        check_broker(self.broker, request)
        stored, _ = await self._append_as(room, name, avatar, text, None, request, bot=True)
        await self._publish(channels.room(room), channels.message_payload(stored), request,
                            None)
        return stored

    async def direct(self, client: Client, user: User, cmd: Direct) -> None:
        """A message to one user, on whichever node it is."""
        stored, created = await self.send_direct(user, cmd.to, cmd.text, cmd.cid,
                                                 reply_to=cmd.reply_to, files=cmd.files)
        if not created:
            client.peer.reply(Frame.of(events.direct(stored)))

    async def send_direct(self, user: User, to_name: str, text: str, cid: str | None, *,
                          bot: bool = False, reply_to: int | None = None,
                          files: tuple[str, ...] = ()) -> tuple[StoredMessage, bool]:
        """Store a direct message of `user` to the user named `to_name`, then publish it to
        every connection of both; as send_room (no socket needed)."""
        check_broker(self.broker, "dm", cid=cid, to=to_name)
        party = await self.users.party_of(to_name)
        # An account receives its direct messages while offline (stored; `unread` tells it on
        # its next join, chat/people/reading.py); a guest only while online on a typed client.
        if party is None or not (party[2] or is_account_party(party[1])):
            raise ProtocolError(
                "not_online", f"{to_name!r} is no account and is not online (or only on a "
                "tutorial client)", request="dm", to=to_name, cid=cid)
        to, target, _ = party
        conversation = dm_key(user.party, target)
        records = await self._attachable(user, files, "dm", cid)
        quote = await self._quote(conversation, reply_to, "dm", cid)
        stored, created = await self._append(
            conversation, user, text_with_links(text, records) if records else text, cid, "dm",
            to=to, bot=bot, reply_to=reply_to)
        stored = await self._quoted(stored, created, quote)
        if created:
            stored = await self._link(stored, records)
            payload = channels.message_payload(stored)
            for channel in sorted({user.party, target}):  # all connections of both, any node
                await self._publish(channels.user(channel), payload, "dm", cid)
        return stored, created

    async def _quote(self, conversation: str, reply_to: int | None, request: str,
                     cid: str | None) -> Quote | None:
        """The quote of the message a reply answers; no_such_message unless the sender may
        read it: one of this same conversation, neither deleted nor removed."""
        if reply_to is None or self.replay is None:
            return None
        try:
            quote = await self.replay.quote(conversation, reply_to)
        except StoreError as exc:
            log.warning("could not read message %d of %s: %s", reply_to, conversation, exc)
            raise ProtocolError("store_failed", "the message answered could not be read; "
                                "nothing was sent", request=request, cid=cid) from None
        if quote.deleted:
            raise ProtocolError(
                "no_such_message", f"reply_to {reply_to} is no message of this conversation "
                "(or it was deleted); nothing was sent", request=request, cid=cid,
                field="reply_to", id=reply_to)
        return quote

    async def _quoted(self, stored: StoredMessage, created: bool,
                      quote: Quote | None) -> StoredMessage:
        """The stored message with its quote: the one just read, or for a repeated cid the
        original's, read now."""
        if stored.reply_to is None:
            return stored
        if created and quote is not None:
            return dataclasses.replace(stored, quote=quote)
        if self.replay is None:
            return stored
        return (await self.replay.with_quotes(stored.conversation, [stored]))[0]

    async def _attachable(self, user: User, file_ids: tuple[str, ...], request: str,
                          cid: str | None) -> list[FileRecord]:
        """The uploads a message will carry: the sender's own (an account's), within
        --files-per-message; ProtocolError naming what is wrong otherwise."""
        if not file_ids:
            return []
        if self.files is None:
            raise ProtocolError("files_unavailable", "this server takes no files",
                                request=request, cid=cid)
        if not is_account_party(user.party):
            raise ProtocolError("files_need_account", "only signed-in accounts may share "
                                "files; sign in to attach one", request=request, cid=cid)
        check_count(file_ids, self.files.limits.per_message, request, cid)
        try:
            return await self.files.attachable(int(user.party[len(ACCOUNT_PARTY):]), file_ids)
        except LookupError as exc:
            raise ProtocolError("no_such_file", f"you have no upload {exc.args[0]!r} (upload "
                                "first: POST /api/v1/uploads)", request=request, cid=cid,
                                file=exc.args[0]) from None
        except StoreError as exc:
            log.warning("files of a message unreadable: %s", exc)
            raise ProtocolError("store_failed", "the message's files cannot be read now; it "
                                "was not sent", request=request, cid=cid) from None

    async def _link(self, stored: StoredMessage, records: list[FileRecord]) -> StoredMessage:
        """Record that the stored message carries its files; the message with them."""
        if not records or self.files is None:
            return stored
        try:
            await self.files.store.link(stored.conversation, stored.id,
                                        [record.id for record in records])
        except StoreError as exc:
            # Sent all the same (its text has the links); unlinked, the uploads are swept
            # after --unattached-upload-ttl.
            log.error("message %d of %s is stored, but not which files it carries: %s",
                      stored.id, stored.conversation, exc)
        return with_files(stored, records)

    async def _append(self, conversation: str, user: User, text: str, cid: str | None,
                      request: str, to: str | None = None, *, bot: bool = False,
                      reply_to: int | None = None) -> tuple[StoredMessage, bool]:
        return await self._append_as(conversation, user.name, user.avatar, text, cid, request,
                                     to, guest=user.guest, bot=bot or user.bot,
                                     reply_to=reply_to,
                                     author=user.party)

    async def _append_as(self, conversation: str, username: str, avatar: str, text: str,
                         cid: str | None, request: str, to: str | None = None, *,
                         guest: bool = False, bot: bool = False, reply_to: int | None = None,
                         author: str | None = None) -> tuple[StoredMessage, bool]:
        started = time.monotonic()
        try:
            stored, created = await self.store.append(
                conversation, username=username, avatar=avatar, text=text,
                ts=int(time.time() * 1000), cid=cid, to=to, guest=guest, bot=bot,
                reply_to=reply_to, author=author)
        except CidReused:
            raise ProtocolError(
                "cid_reused", f"cid {cid!r} was already used for another conversation in the "
                f"last {IDEMPOTENCY_WINDOW_MS // 60_000} minutes; send a new message with a new "
                "cid", request=request, cid=cid) from None
        except StoreError as exc:
            self.stats.store_failures += 1
            self.stats.store_failing += 1
            log.error("could not store a message in %s: %s", conversation, exc)
            raise ProtocolError("store_failed", "the message could not be stored; "
                                "it was not sent", request=request, cid=cid) from None
        self.stats.store_failing = 0
        if self._observe_store_latency is not None:
            self._observe_store_latency(time.monotonic() - started)
        if created:
            self.stats.messages += 1
            self._faults.committed()  # stored, not yet published: where a test kills the node
        return stored, created

    async def _publish(self, channel: str, payload: bytes, request: str,
                       cid: str | None) -> None:
        try:
            await self.broker.publish(channel, payload)
        except BrokerError as exc:
            log.warning("could not publish on %s: %s", channel, exc)
            raise ProtocolError("broker_down", "stored, but the chat's other servers cannot be "
                                "reached now: it reaches them when they are back",
                                request=request, cid=cid) from None
