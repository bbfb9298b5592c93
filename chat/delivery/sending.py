"""Room and direct messages: stored first, then announced on the broker to every node."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from chat.broker.base import Broker, BrokerError
from chat.delivery import channels
from chat.files.attach import check_count, text_with_links, with_files
from chat.files.service import Files
from chat.files.store import FileRecord
from chat.node.faults import Faults
from chat.node.status import Stats
from chat.people.connections import Client, User
from chat.people.directory import Directory
from chat.people.identity import ACCOUNT_PARTY, is_account_party
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.protocol.parse import Direct, Post, ProtocolError
from chat.record import StoredMessage, dm_key
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
        # Uploads a message may carry (issue 18); None: this server takes no files.
        self.files: Files | None = None

    async def post(self, client: Client, user: User, cmd: Post) -> None:
        """A message to a room the client is in."""
        check_broker(self.broker, "message", cid=cmd.cid)
        records = await self._attachable(user, cmd.files, "message", cmd.cid)
        stored, created = await self._append(
            cmd.room, user, text_with_links(cmd.text, records) if records else cmd.text,
            cmd.cid, "message")
        if not created:
            client.peer.reply(Frame.of(events.message(stored)))  # the original acknowledgement
        else:
            stored = await self._link(stored, records)
            await self._publish(channels.room(cmd.room), channels.message_payload(stored),
                                "message", cmd.cid)

    async def direct(self, client: Client, user: User, cmd: Direct) -> None:
        """A message to one user, on whichever node it is."""
        check_broker(self.broker, "dm", cid=cmd.cid, to=cmd.to)
        party = await self.users.party_of(cmd.to)
        # An account receives its direct messages while offline (stored; `unread` tells it on
        # its next join, chat/people/reading.py); a guest only while online on a typed client.
        if party is None or not (party[2] or is_account_party(party[1])):
            raise ProtocolError(
                "not_online", f"{cmd.to!r} is no account and is not online (or only on a "
                "tutorial client)", request="dm", to=cmd.to, cid=cmd.cid)
        to, target, _ = party
        records = await self._attachable(user, cmd.files, "dm", cmd.cid)
        stored, created = await self._append(
            dm_key(user.party, target), user,
            text_with_links(cmd.text, records) if records else cmd.text, cmd.cid, "dm", to=to)
        if not created:
            client.peer.reply(Frame.of(events.direct(stored)))
        else:
            stored = await self._link(stored, records)
            payload = channels.message_payload(stored)
            for channel in sorted({user.party, target}):  # all connections of both, any node
                await self._publish(channels.user(channel), payload, "dm", cmd.cid)

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
                      request: str, to: str | None = None) -> tuple[StoredMessage, bool]:
        started = time.monotonic()
        try:
            stored, created = await self.store.append(
                conversation, username=user.name, avatar=user.avatar, text=text,
                ts=int(time.time() * 1000), cid=cid, to=to, guest=user.guest)
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
