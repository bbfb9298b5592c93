"""`chat_server.py rooms audit --db URL [--room R] [--limit N]`: the moderation audit log.

Reads the database a server uses while it runs (SQLite's WAL, or PostgreSQL), newest first,
one line per action: when (UTC), who, what, the room, whom, and the details.
"""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Sequence

from chat.accounts import open_accounts
from chat.commands import CommandParser
from chat.dbcommand import run_on_db
from chat.protocol.parse import check_room
from chat.rooms.store import RoomStore

AUDIT_MAX = 10_000  # entries one reading prints at most (lines): page with --room instead


def _parser() -> CommandParser:
    parser = CommandParser(prog="chat_server.py rooms", description="Rooms in the database a "
                           "server uses (a SQLite file or a postgresql:// URL).")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    parser_class=CommandParser)
    audit = actions.add_parser("audit", help="the moderation audit log, newest first",
                               description="the moderation audit log, newest first")
    audit.add_argument("--db", required=True, metavar="URL",
                       help="the server's --db: SQLite file or postgresql:// URL")
    audit.add_argument("--room", help="only this room's entries")
    audit.add_argument("--limit", type=int, default=100,
                       help=f"how many entries (1 to {AUDIT_MAX:,}; default 100)")
    return parser


async def _audit(args: argparse.Namespace) -> int:
    store = open_accounts(args.db)
    await store.start()
    try:
        entries = await RoomStore(store).audit_log(args.room, args.limit)
    finally:
        await store.close()
    print(f"{'WHEN (UTC)':<20} {'WHO':<24} {'WHAT':<8} {'ROOM':<20} {'WHOM':<24} DETAILS")
    for entry in entries:
        when = datetime.datetime.fromtimestamp(entry.ts / 1000, datetime.UTC)
        who = entry.actor + ("" if entry.actor_id is None else f" (#{entry.actor_id})")
        room = entry.room or "(server)"  # a ban from the whole server has no room
        print(f"{when:%Y-%m-%d %H:%M:%S}  {who:<24} {entry.action:<8} {room:<20}"
              f" {entry.target_name or '-':<24} {json.dumps(entry.details or {})}")
    return 0


def main(argv: Sequence[str]) -> int:
    """The command: 0 when done, 1 if the database failed, 2 for bad arguments."""
    parser = _parser()
    args = parser.parse(argv)
    if not 1 <= args.limit <= AUDIT_MAX:
        parser.error(f"--limit is {args.limit}; it must be between 1 and {AUDIT_MAX:,}")
    if args.room is not None:
        try:
            args.room = check_room(args.room)
        except Exception as exc:  # ProtocolError: its reason names the rule
            parser.error(f"--room: {exc}")
    return run_on_db(f"rooms {args.action}", args.db, lambda: _audit(args))
