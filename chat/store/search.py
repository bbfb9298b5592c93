"""Full-text search in the history stores: what may be searched, the filters, and the SQL.

SQLite searches an FTS5 index (`messages_fts`, external content over `messages`, ranked by
bm25); PostgreSQL a GIN index over the generated `search_vector` column (ranked by ts_rank).
Both are kept in step with `messages` by the database itself (triggers; a generated column), so
an edit or delete of a row, by any code, changes what search finds at its commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from chat.record import StoredMessage
from chat.search.query import Term, fts5_match, tsquery
from chat.store.sql import MESSAGE_COLUMNS

# Bounds of the `ts` filters when none is given (ms): every message lies within.
TS_FIRST, TS_LAST = 0, 2**62
# Hits ranked by default (the service passes --search-rank-max).
RANK_WINDOW = 10_000
# Separates a room and an id in a hidden message's key (a room name never holds it).
_KEY_SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class Scope:
    """The conversations one user may read: rooms by name (or every room, on a server without
    room access rules), direct conversations by key, less the messages moderators removed."""

    rooms: Sequence[str] = ()
    every_room: bool = False
    directs: Sequence[str] = ()
    hidden: Sequence[tuple[str, int]] = ()  # (room, id)

    def conversations(self) -> list[str]:
        return [*self.rooms, *self.directs]

    def hidden_keys(self) -> list[str]:
        return [f"{room}{_KEY_SEP}{message_id}" for room, message_id in self.hidden]


@dataclass(frozen=True, slots=True)
class Filters:
    """Narrow a search: one conversation, one author (case-blind), a time range (ms)."""

    conversation: str | None = None
    author: str | None = None
    after: int = TS_FIRST  # ts at or after this
    before: int = TS_LAST  # ts before this
    window: int = RANK_WINDOW  # hits ranked: the newest this many (see SQLITE_SEARCH)


@dataclass(frozen=True, slots=True)
class Found:
    """One page of results, best first; `more`: another page follows."""

    messages: list[StoredMessage] = field(default_factory=list)
    more: bool = False


@runtime_checkable
class MessageSearch(Protocol):
    """A store that searches its messages (both SQLite and PostgreSQL stores do).

    `search` returns the messages in `scope` that hold every term (a prefix term: a word that
    starts with it), after `filters`: of the newest `filters.window` such, the best ranked
    first (ties: newest first), skipping `offset` and returning at most `limit`.
    """

    async def search(self, terms: Sequence[Term], scope: Scope, filters: Filters, *,
                     offset: int, limit: int) -> Found: ...


_COLUMNS = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))
# CAST: PostgreSQL cannot tell the type of a parameter that is only compared with NULL.
_FILTERS = ("AND (CAST(? AS TEXT) IS NULL OR m.conversation = ?)"
            " AND (CAST(? AS TEXT) IS NULL OR lower(m.username) = lower(?))"
            " AND m.ts >= ? AND m.ts < ?")

# Ranking reads every hit it ranks: a word in a third of a million messages would cost
# seconds. So the newest `window` hits in scope are ranked (found newest first through the
# index, which stops there); older ones are found by narrowing (`before`, a room, a person).
_OUTER = ", ".join(f"h.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))

SQLITE_SEARCH = (
    f"SELECT {_OUTER} FROM (SELECT {_COLUMNS}, bm25(messages_fts, 1.0, 0.0) AS score"
    " FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid"
    " WHERE messages_fts MATCH ?"
    " AND (m.conversation IN (SELECT value FROM json_each(?))"
    "  OR (? AND substr(m.conversation, 1, 1) <> '@'))"
    " AND m.conversation || char(31) || m.id NOT IN (SELECT value FROM json_each(?))"
    f" {_FILTERS} ORDER BY messages_fts.rowid DESC LIMIT ?) h"
    " ORDER BY h.score, h.ts DESC, h.conversation, h.id LIMIT ? OFFSET ?")

# The scope's lists are sub-selects, not `= ANY(array)`: a hashed set, where ANY compares each
# row with every name of a 1,000-room scope. ts_rank's normalization 1: divided by 1 + the log
# of the message's length, so a short message about the words ranks above a long one that
# mentions them once. Computed outside the window's query, so only for the hits in it.
POSTGRES_SEARCH = (
    f"SELECT {_OUTER} FROM (SELECT {_COLUMNS}, m.search_vector"
    " FROM messages m WHERE m.search_vector @@ to_tsquery('simple', %(q)s)"
    " AND (m.conversation IN (SELECT unnest(%(rooms)s::text[])) OR (%(every)s"
    "  AND left(m.conversation, 1) <> '@'))"
    " AND (m.conversation || chr(31) || m.id::text)"
    "  NOT IN (SELECT unnest(%(hidden)s::text[]))"
    " AND (CAST(%(conversation)s AS TEXT) IS NULL OR m.conversation = %(conversation)s)"
    " AND (CAST(%(author)s AS TEXT) IS NULL OR lower(m.username) = lower(%(author)s))"
    " AND m.ts >= %(after)s AND m.ts < %(before)s ORDER BY m.ts DESC LIMIT %(window)s) h"
    " ORDER BY ts_rank(h.search_vector, to_tsquery('simple', %(q)s), 1) DESC, h.ts DESC,"
    " h.conversation, h.id LIMIT %(limit)s OFFSET %(offset)s")


def sqlite_params(terms: Sequence[Term], scope: Scope, filters: Filters, offset: int,
                  limit: int) -> tuple[Any, ...]:
    """SQLITE_SEARCH's parameters; one row more than `limit`, to tell whether more follow."""
    return (fts5_match(list(terms), filters.conversation), json.dumps(scope.conversations()),
            int(scope.every_room), json.dumps(scope.hidden_keys()), filters.conversation,
            filters.conversation, filters.author, filters.author, filters.after,
            filters.before, filters.window, limit + 1, offset)


def postgres_params(terms: Sequence[Term], scope: Scope, filters: Filters, offset: int,
                    limit: int) -> dict[str, Any]:
    """POSTGRES_SEARCH's parameters; one row more than `limit`, as sqlite_params."""
    return {"q": tsquery(list(terms)), "rooms": scope.conversations(),
            "every": scope.every_room, "hidden": scope.hidden_keys(),
            "conversation": filters.conversation, "author": filters.author,
            "after": filters.after, "before": filters.before, "window": filters.window,
            "limit": limit + 1, "offset": offset}


def page(messages: list[StoredMessage], limit: int) -> Found:
    """The page from `limit + 1` rows read."""
    return Found(messages[:limit], len(messages) > limit)
