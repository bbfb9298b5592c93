"""`accounts adopt-dms ACCOUNT OLD-NAME`: direct conversations stored under names (before
accounts) given to the account an admin says held that name.

No one can prove to the server that they were the name that held a conversation then, so it is
an admin's decision, one old name to one account, recorded in `legacy_names`. Each old
conversation of the name (`@<name>\\x1f<name>`, case-folded) is rekeyed to a pair of parties
(record.dm_key): the account's `a:<id>`, and for the other side the account that adopted its
name, or else the *legacy party* `n:<case-folded name>`, which no live user ever is. When that
other name is adopted later, its legacy party becomes the account too, and both accounts read
the conversation. Only an account party can ask for a conversation, so a guest never reads one.

Rekeying a conversation into one that exists (both accounts already wrote to each other) merges
them: every message of both gets a new id above both counters, in time order, so no id is used
twice and no reader's cursor points at another message (it sees a gap, as after retention).
The rows keep the names they were written with ("existing history keeps its names").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from chat.accounts.model import AccountError
from chat.people.identity import account_party, legacy_party
from chat.record import DM_PREFIX, dm_key, dm_parties

# One statement (with `?` markers) run inside the adoption's transaction; the rows it returns.
Run = Callable[[str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]

ADOPTED_BY = "SELECT account_id FROM legacy_names WHERE name = ?"
ADOPT = "INSERT INTO legacy_names (name, account_id, ts) VALUES (?, ?, ?)"
ADOPTED = "SELECT name, account_id FROM legacy_names"
DM_KEYS = "SELECT key FROM conversations WHERE substr(key, 1, 1) = ?"
COUNTER = "SELECT last_id, last_ts FROM conversations WHERE key = ?"
MESSAGE_IDS = "SELECT id, ts FROM messages WHERE conversation = ?"
MOVE_MESSAGES = "UPDATE messages SET conversation = ? WHERE conversation = ?"
MOVE_CIDS = "UPDATE cids SET conversation = ? WHERE conversation = ?"
MOVE_COUNTER = "UPDATE conversations SET key = ? WHERE key = ?"
RENUMBER = "UPDATE messages SET conversation = ?, id = ? WHERE conversation = ? AND id = ?"
RENUMBER_CID = "UPDATE cids SET conversation = ?, id = ? WHERE conversation = ? AND id = ?"
DROP_COUNTER = "DELETE FROM conversations WHERE key = ?"
SET_COUNTER = "UPDATE conversations SET last_id = ?, last_ts = ? WHERE key = ?"


class Adopted(NamedTuple):
    """What an adoption moved: conversations rekeyed, and their messages."""

    conversations: int
    messages: int


def old_names(key: str) -> tuple[str, str] | None:
    """The two case-folded names of a conversation key from before accounts, or None."""
    if not key.startswith("@") or key.startswith(DM_PREFIX):
        return None
    first, sep, second = key[1:].partition("\x1f")
    return (first, second) if sep else None


def _target(key: str, name: str, me: str, adopted: dict[str, int]) -> str | None:
    """The key conversation `key` moves to when `name` becomes party `me`, or None."""
    pair = old_names(key)
    if pair is not None:
        if name not in pair:
            return None
        other = pair[1] if pair[0] == name else pair[0]
        if other == name:
            return dm_key(me, me)  # notes to oneself
        return dm_key(me, account_party(adopted[other]) if other in adopted
                      else legacy_party(other))
    parties = dm_parties(key)
    if legacy_party(name) not in parties:
        return None
    return dm_key(*(me if party == legacy_party(name) else party for party in parties))


async def adopt(run: Run, account_id: int, old_name: str, ts: int) -> Adopted:
    """Give `old_name`'s old conversations to the account (inside the caller's transaction);
    AccountError if another account adopted that name. Running it again moves nothing."""
    name = old_name.strip().casefold()
    holder = await run(ADOPTED_BY, (name,))
    if holder and int(holder[0][0]) != account_id:
        raise AccountError("name_adopted", f"the old conversations of {old_name!r} were given "
                           f"to another account (id {holder[0][0]})")
    if not holder:
        await run(ADOPT, (name, account_id, ts))
    adopted = {str(row[0]): int(row[1]) for row in await run(ADOPTED, ())}
    me = account_party(account_id)
    moved = Adopted(0, 0)
    for (key,) in await run(DM_KEYS, ("@",)):
        target = _target(str(key), name, me, adopted)
        if target is not None and target != key:
            count = await _move(run, str(key), target)
            moved = Adopted(moved.conversations + 1, moved.messages + count)
    return moved


async def _move(run: Run, source: str, target: str) -> int:
    """Rekey one conversation (merging it into `target` if that exists); its message count."""
    rows = await run(MESSAGE_IDS, (source,))
    into = await run(COUNTER, (target,))
    if not into:
        await run(MOVE_MESSAGES, (target, source))
        await run(MOVE_CIDS, (target, source))
        await run(MOVE_COUNTER, (target, source))
        return len(rows)
    counter = await run(COUNTER, (source,))
    base = max(int(into[0][0]), int(counter[0][0]) if counter else 0)
    last_ts = max(int(into[0][1]), int(counter[0][1]) if counter else 0)
    ordered = sorted([(int(ts), 0, source, int(id_)) for id_, ts in rows]
                     + [(int(ts), 1, target, int(id_))
                        for id_, ts in await run(MESSAGE_IDS, (target,))])
    # New ids above both counters: no update meets a row that still has its old id.
    for new_id, (_, _, conversation, old_id) in enumerate(ordered, base + 1):
        await run(RENUMBER, (target, new_id, conversation, old_id))
        await run(RENUMBER_CID, (target, new_id, conversation, old_id))
    await run(DROP_COUNTER, (source,))
    await run(SET_COUNTER, (base + len(ordered), last_ts, target))
    return len(rows)
