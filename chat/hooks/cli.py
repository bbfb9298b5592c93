"""`chat_server.py webhooks list|create|revoke --db URL`: rooms' webhooks, as a server admin.

Works on the database a server uses while it runs (SQLite's WAL, or PostgreSQL): a hook made
here is live at once on every node (an outgoing one within chat/hooks/outgoing.py's REFRESH_S),
a revoked one stops at once.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Sequence

from chat.accounts import open_accounts
from chat.commands import CommandParser, say
from chat.dbcommand import run_on_db
from chat.hooks.service import HookError, Webhooks, now_ms
from chat.hooks.store import HookStore
from chat.protocol.parse import ProtocolError, check_room
from chat.rooms.store import RoomStore


def _parser() -> CommandParser:
    parser = CommandParser(prog="chat_server.py webhooks", description="Rooms' incoming and "
                           "outgoing webhooks in the database a server uses (a SQLite file or a "
                           "postgresql:// URL).")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    parser_class=CommandParser)
    listing = actions.add_parser("list", help="the live webhooks (of one room with --room)")
    listing.add_argument("--room", help="only this room's")
    create = actions.add_parser(
        "create", help="a new webhook: incoming (prints its secret path /hooks/...) or, with "
        "--url, outgoing (prints its signing key); either is shown this once")
    create.add_argument("--room", required=True)
    create.add_argument("--name", required=True, help="the name its messages are posted under")
    create.add_argument("--url", help="outgoing: the URL called (http or https)")
    create.add_argument("--trigger", action="append", default=[], metavar="WORD",
                        help="outgoing: a word that, first in a message, calls the URL "
                             "(repeat for more; a mention of @NAME always does)")
    revoke = actions.add_parser("revoke", help="stop a webhook at once, by its id")
    revoke.add_argument("id")
    for sub in (listing, create, revoke):
        sub.add_argument("--db", required=True, metavar="URL",
                         help="the server's --db: SQLite file or postgresql:// URL")
    return parser


async def _run(args: argparse.Namespace) -> int:
    store = open_accounts(args.db)
    await store.start()
    try:
        hooks = HookStore(store)
        if args.action == "list":
            for hook in await hooks.of_room(args.room):
                when = datetime.datetime.fromtimestamp(hook.created_ts / 1000, datetime.UTC)
                target = f" -> {hook.url} on {','.join(hook.triggers) or '@' + hook.name}" \
                    if hook.kind == "outgoing" else ""
                print(f"{hook.id}  {hook.kind:<8} {hook.room:<20} {hook.name!r}"
                      f"  made {when:%Y-%m-%d %H:%M}{target}")
            return 0
        if args.action == "revoke":
            if not await hooks.revoke(args.id, now_ms()):
                say(f"webhooks revoke: no live webhook {args.id!r}")
                return 1
            print(f"revoked {args.id}")
            return 0
        access = await RoomStore(store).access(args.room, None, [], now_ms())
        if access.room is None:
            say(f"webhooks create: there is no room {args.room!r}")
            return 1
        name = Webhooks.check_name(args.name)
        if args.url is None:
            hook, secret = await hooks.create_incoming(args.room, name, None, now_ms())
            print(f"incoming webhook {hook.id} of {hook.room}: POST to /hooks/{secret}"
                  " (shown this once)")
        else:
            url, words = Webhooks.check_outgoing(args.url, args.trigger)
            hook = await hooks.create_outgoing(args.room, name, url, words, None, now_ms())
            print(f"outgoing webhook {hook.id} of {hook.room}: signing key "
                  f"{hook.signing_key} (shown this once)")
        return 0
    finally:
        await store.close()


def main(argv: Sequence[str]) -> int:
    """The command: 0 when done, 1 if refused or the database failed, 2 for bad arguments."""
    parser = _parser()
    args = parser.parse(argv)
    if getattr(args, "room", None) is not None:
        try:
            args.room = check_room(args.room)
        except ProtocolError as exc:
            parser.error(f"--room: {exc.reason}")
    try:
        return run_on_db(f"webhooks {args.action}", args.db, lambda: _run(args))
    except HookError as exc:
        say(f"webhooks {args.action}: {exc.reason}")
        return 1
