"""`search` (docs/protocol.md): the messages a user may read that hold the query's words.

`Searcher.search` needs no connection (a user and its address), so the HTTP API can call it
too; `Searcher.answer` is the `search` frame's handler on the hub.
"""

from __future__ import annotations

import logging
import time
from time import monotonic
from typing import Any

from chat.config import Settings
from chat.limits import TokenBucket
from chat.people.connections import Client, User, user_of
from chat.people.directory import Directory
from chat.people.identity import legacy_party
from chat.people.names import name_key
from chat.protocol.frame import Frame
from chat.protocol.parse import ProtocolError, Search
from chat.record import StoredMessage, dm_key
from chat.rooms.store import RoomStore
from chat.search.query import TERMS_MAX, Term, excerpt, terms
from chat.search.scope import scope_of
from chat.store.base import ReadMarks, StoreError
from chat.store.search import TS_FIRST, TS_LAST, Filters, Found, MessageSearch

log = logging.getLogger("chat.search")

# Searches a user may run at once before --search-per-minute paces it: a person refining a
# query sends a few in a row.
SEARCH_BURST = 5
# Users whose search allowance is remembered before the full (idle) ones are forgotten.
BUCKETS_KEPT = 1000


def _full(bucket: TokenBucket, now: float) -> bool:
    """Whether the bucket has filled up again (its user has not searched for a while)."""
    return bucket.rate <= 0 or bucket.tokens + (now - bucket.stamp) * bucket.rate >= bucket.burst


def _fail(reason: str, **refs: Any) -> ProtocolError:
    return ProtocolError("invalid_field", reason, request="search", **refs)


class Searcher:
    """Answers searches within each user's Scope (chat/search/scope.py)."""

    def __init__(self, settings: Settings, store: object, rooms: RoomStore | None,
                 directory: Directory) -> None:
        self.settings = settings
        # Both history stores search and keep read marks; a store that does not (a test's
        # stand-in) makes every search answer `store_failed`.
        self.store = store if isinstance(store, MessageSearch) else None
        self.marks = store if isinstance(store, ReadMarks) else None
        self.rooms = rooms
        self.directory = directory
        self._buckets: dict[str, TokenBucket] = {}  # by party: a user's searches on this node

    def allow(self, user: User) -> None:
        """Spend one of the user's searches, or ProtocolError('rate_limited')."""
        per_minute = self.settings.search_per_minute
        now = monotonic()
        bucket = self._buckets.get(user.party)
        if bucket is None:
            if len(self._buckets) >= BUCKETS_KEPT:  # forget those that are full again
                self._buckets = {party: kept for party, kept in self._buckets.items()
                                 if not _full(kept, now)}
            bucket = self._buckets[user.party] = TokenBucket(per_minute / 60, SEARCH_BURST, now)
        if not bucket.take(now):
            raise ProtocolError("rate_limited", f"more than {per_minute} searches per minute "
                                "(--search-per-minute); search again shortly",
                                request="search", limit=per_minute)

    def check(self, cmd: Search) -> tuple[list[Term], int]:
        """The query's terms and the page size, or ProtocolError naming the value and limit."""
        settings = self.settings
        if len(cmd.query) > settings.search_query_max_chars:
            raise _fail(f"the query is {len(cmd.query):,} characters; the limit is "
                        f"{settings.search_query_max_chars:,} (--search-query-max-chars)",
                        field="query", limit=settings.search_query_max_chars)
        found = terms(cmd.query)
        if not found:
            raise _fail("the query holds no word to search for (words are letters and "
                        "digits; end one with * to find words that start with it)",
                        field="query")
        if len(found) > TERMS_MAX:
            raise _fail(f"the query has {len(found)} different words; the limit is "
                        f"{TERMS_MAX}", field="query", limit=TERMS_MAX)
        limit = settings.search_page_max if cmd.limit is None else cmd.limit
        if not 1 <= limit <= settings.search_page_max:
            raise _fail(f"'limit' is {limit:,}; it must be 1 to {settings.search_page_max:,} "
                        "(--search-page-max)", field="limit", limit=settings.search_page_max)
        if cmd.offset > settings.search_offset_max:
            raise _fail(f"'offset' is {cmd.offset:,}; the limit is "
                        f"{settings.search_offset_max:,} (--search-offset-max): narrow the "
                        "search with a room, a person or dates", field="offset",
                        limit=settings.search_offset_max)
        return found, limit

    async def search(self, user: User, address: str, cmd: Search) -> dict[str, Any]:
        """The `search_results` event answering `cmd` for `user` (connected from `address`)."""
        words, limit = self.check(cmd)
        self.allow(user)
        if self.store is None or self.marks is None:
            raise ProtocolError("store_failed", "this server's history store cannot search",
                                request="search")
        try:
            scope = await scope_of(user, address, self.rooms, self.marks,
                                   time.time_ns() // 1_000_000)
            conversation = await self._conversation(user, cmd, scope.conversations(),
                                                    scope.every_room)
            found = await self.store.search(
                words, scope, Filters(conversation, cmd.author, cmd.after or TS_FIRST,
                                      TS_LAST if cmd.before is None else cmd.before,
                                      self.settings.search_rank_max),
                offset=cmd.offset, limit=limit)
        except StoreError as exc:
            log.warning("a search could not be answered: %s", exc)
            raise ProtocolError("store_failed", "the history cannot be searched now; try "
                                "again shortly", request="search") from None
        return self._event(user, cmd, found, words)

    async def _conversation(self, user: User, cmd: Search, readable: list[str],
                            every_room: bool) -> str | None:
        """The conversation `room` or `with` names, if the user may read it; else the same
        answer as for a room that does not exist (a private room stays secret)."""
        if cmd.room is not None:
            if cmd.room not in readable and not every_room:
                raise ProtocolError("no_such_room", f"there is no room {cmd.room!r}",
                                    request="search", room=cmd.room)
            return cmd.room
        if cmd.peer is not None:
            party = await self.directory.party_of(cmd.peer)
            return dm_key(user.party, legacy_party(cmd.peer) if party is None else party[1])
        return None

    def _event(self, user: User, cmd: Search, found: Found, words: list[Term]) -> dict[str, Any]:
        results = [self._result(user, message, words) for message in found.messages]
        event: dict[str, Any] = {"type": "search_results", "query": cmd.query,
                                 "offset": cmd.offset, "results": results, "more": found.more}
        if found.more:
            event["next_offset"] = cmd.offset + len(results)
        return event

    @staticmethod
    def _result(user: User, message: StoredMessage, words: list[Term]) -> dict[str, Any]:
        """One hit: where it is (`room`, or `with` for a direct message), who, when, and the
        excerpt as [text, hit] segments (the page marks hits; no markup is in the text)."""
        result: dict[str, Any] = {"id": message.id}
        if message.to is None:
            result["room"] = message.conversation
        else:  # the other side of the asker's own conversation
            mine = name_key(message.username) == user.key
            result["with"] = message.to if mine else message.username
        result.update({"username": message.username, "avatar": message.avatar,
                       "ts": message.ts, "excerpt": excerpt(message.text, words)})
        if message.guest:
            result["guest"] = True
        return result

    async def answer(self, client: Client, cmd: Search) -> None:
        """The `search` frame's handler."""
        user = user_of(client, "search")
        client.reply(Frame.of(await self.search(user, client.address, cmd)))
