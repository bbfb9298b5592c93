"""What one user may search: the rooms it may read, its direct conversations, less removals.

The same rule as a `join` (chat/rooms/access.py): a public room, or a private room the account
is a member of, and no ban of the user (or of a guest's address) from it or from the server.
A guest is a member of no private room. Direct conversations are those whose key holds the
user's own party (record.dm_key), so another pair's never are.
"""

from __future__ import annotations

from chat.addresses import address_group
from chat.people.connections import User
from chat.rooms.store import SERVER_WIDE, RoomStore
from chat.store.base import ReadMarks
from chat.store.search import Scope

# Rooms the user may read: public, or private with the account a member; not banned.
_READABLE = ("SELECT r.name FROM rooms r WHERE (r.visibility = ? OR EXISTS (SELECT 1"
             " FROM room_members m WHERE m.room = r.name AND m.account_id = ?))"
             " AND NOT EXISTS (SELECT 1 FROM room_sanctions s WHERE s.room IN (r.name, ?)"
             " AND s.kind = ? AND s.target IN (?, ?) AND s.until_ts > ?)")
# Messages moderators removed from those rooms (chat/rooms/moderation.py's `remove`).
_REMOVED = (f"SELECT h.room, h.id FROM removed_messages h WHERE h.room IN ({_READABLE})")


def _params(user: User, address: str, now: int) -> tuple[object, ...]:
    targets = [user.party, "ip:" + address_group(address) if user.guest else user.party]
    account = user.account.id if user.account is not None else -1
    return ("public", account, SERVER_WIDE, "ban", *targets, now)


async def scope_of(user: User, address: str, rooms: RoomStore | None, history: ReadMarks,
                   now: int) -> Scope:
    """The user's Scope now; `address`: the client's (a guest's bans cover it); `rooms`: None
    on a server without accounts, where every room is public and no one is banned."""
    directs = [key for key, _ in await history.direct_conversations(user.party)]
    if rooms is None:
        return Scope(every_room=True, directs=directs)
    params = _params(user, address, now)
    readable = [str(name) for (name,) in await rooms.sql.sql_rows(_READABLE, params)]
    hidden = [(str(room), int(message_id))
              for room, message_id in await rooms.sql.sql_rows(_REMOVED, params)]
    return Scope(rooms=readable, directs=directs, hidden=hidden)
