"""`chat_server.py accounts ACTION --db URL ...`: the admin command line for accounts.

Works against the database a server uses while it runs (SQLite's WAL, or PostgreSQL): a
disabled account or a reset password ends the account's sessions, and every server closes
their sockets within --revocation-poll (PostgreSQL: at once). Passwords come from a prompt
or, with --password-stdin, from the first line of stdin; never from the command line.
Nothing prints a password, a token or a database password.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import sys
import time
from collections.abc import Sequence

from chat.accounts import AccountError, AccountService, open_accounts
from chat.accounts.base import AccountStore
from chat.accounts.model import INVITE_ID_CHARS
from chat.accounts.policy import INVITE_TTL_DAYS, INVITE_TTL_MAX_DAYS, check_invite_ttl
from chat.accounts.tokens import Tokens
from chat.commands import CommandParser, say
from chat.dbcommand import run_on_db

ACTIONS = {
    "create": "NAME: a new account (the first one is an admin)",
    "list": "every account: name, role, disabled, created, sessions",
    "disable": "NAME: refuse its logins and end its sessions (sockets close on every server)",
    "enable": "NAME: allow its logins again",
    "reset-password": "NAME: set a new password and end its sessions",
    "promote": "NAME: make it an admin",
    "demote": "NAME: make it a member (one enabled admin always remains)",
    "invite": "print a new single-use invite code (for --registration invite), once; it "
              "expires after --ttl-days. --list: every invite; --revoke ID: expire one now",
    "bot": "NAME: a new bot account (no password: it uses the HTTP API by tokens only)",
    "bots": "every bot account",
    "token": "NAME: print a new API token of account NAME (a bot's, say), once; --scopes",
    "tokens": "every API token: id, account, name, scopes, created, last used",
    "revoke-token": "ID: revoke an API token (it stops working at once, on every server)",
    "adopt-dms": "NAME OLD-NAME: give the direct conversations stored under OLD-NAME before "
                 "accounts to account NAME (once per old name; running it again moves nothing)",
}


def _parser() -> CommandParser:
    parser = CommandParser(prog="chat_server.py accounts", description="Manage accounts in the "
                           "database a server uses (a SQLite file or a postgresql:// URL); "
                           "no restart needed.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    parser_class=CommandParser)
    for action, summary in ACTIONS.items():
        sub = actions.add_parser(action, help=summary, description=summary)
        sub.add_argument("--db", required=True, metavar="URL",
                         help="the server's --db: SQLite file or postgresql:// URL")
        if summary.startswith("NAME"):
            sub.add_argument("name", metavar="NAME")
        if summary.startswith("ID"):
            sub.add_argument("token_id", metavar="ID")
        if action == "token":
            sub.add_argument("--scopes", default="read,write", metavar="LIST",
                             help="comma-separated: read, write, admin (default read,write)")
            sub.add_argument("--label", default="cli", help="the token's name (default cli)")
        if action == "adopt-dms":
            sub.add_argument("old_name", metavar="OLD-NAME",
                             help="the name the conversations were stored under")
        if action in ("create", "reset-password"):
            sub.add_argument("--password-stdin", action="store_true",
                             help="read the password from the first line of stdin")
        if action == "invite":
            sub.add_argument("--ttl-days", type=float, default=INVITE_TTL_DAYS, metavar="DAYS",
                             help=f"how long the code is usable (days, default "
                                  f"{INVITE_TTL_DAYS:g}, at most {INVITE_TTL_MAX_DAYS:g})")
            what = sub.add_mutually_exclusive_group()
            what.add_argument("--list", action="store_true",
                              help="list every invite (id, created, expires, state) instead")
            what.add_argument("--revoke", metavar="ID",
                              help="make the open invite with this id (from --list) expire now")
        if action == "create":
            sub.add_argument("--email", help="for the avatar (optional)")
            sub.add_argument("--admin", action="store_true", help="make it an admin")
    return parser


def _password(args: argparse.Namespace) -> str:
    """The new password, from stdin or a prompt (typed twice)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError("passwords_differ", "the two passwords differ")
    return first


async def _run(args: argparse.Namespace) -> int:
    store: AccountStore = open_accounts(args.db)
    await store.start()
    try:
        service = AccountService(store)
        return await _act(service, args)
    finally:
        await store.close()


async def _act(service: AccountService, args: argparse.Namespace) -> int:
    action = args.action
    if action == "create":
        account = await service.create(args.name, _password(args), args.email,
                                       role="admin" if args.admin else None)
        print(f"accounts: created {account.name!r} ({account.role}, id {account.id})")
    elif action == "list":
        print(f"{'NAME':<32} {'ROLE':<6} {'DISABLED':<8} {'CREATED (UTC)':<20} SESSIONS")
        for account, sessions in await service.store.list_accounts():
            created = datetime.datetime.fromtimestamp(account.created_ts / 1000, datetime.UTC)
            print(f"{account.name:<32} {account.role:<6} {'yes' if account.disabled else 'no':<8}"
                  f" {created:%Y-%m-%d %H:%M:%S}  {sessions}")
    elif action == "invite":
        await _invite(service, args)
    elif action in ("bot", "bots", "token", "tokens", "revoke-token"):
        await _tokens(Tokens(service), args)
    elif action == "adopt-dms":
        account = await service.find(args.name)
        moved = await service.store.adopt_dms(account.id, args.old_name,
                                              int(time.time() * 1000))
        print(f"accounts: adopt-dms: {moved.conversations} conversation(s), {moved.messages} "
              f"message(s) of {args.old_name!r} given to {account.name!r}")
    else:
        account = await service.find(args.name)
        if action in ("disable", "enable"):
            await service.set_disabled(account, action == "disable")
        elif action in ("promote", "demote"):
            await service.set_role(account, "admin" if action == "promote" else "member")
        elif await Tokens(service).is_bot(account.id):
            raise AccountError("bot_account", f"{account.name!r} is a bot: it signs in by "
                               "tokens only (accounts token), never by a password")
        else:
            await service.reset_password(account, _password(args))
        print(f"accounts: {action}: done for {account.name!r}")
    return 0


async def _invite(service: AccountService, args: argparse.Namespace) -> None:
    """A new code on stdout alone (a script reads it), its expiry on stderr; or --list or
    --revoke."""
    now = int(time.time() * 1000)
    if args.list:
        print(f"{'ID':<{INVITE_ID_CHARS}} {'CREATED (UTC)':<16} {'EXPIRES (UTC)':<16} STATE")
        for invite in await service.store.list_invites():
            state = invite.state(now)
            if invite.used_by is not None:
                state += f" by {invite.used_by}"
            print(f"{invite.id:<{INVITE_ID_CHARS}} {_utc(invite.created_ts)} "
                  f"{_utc(invite.expires_ts)} {state}")
    elif args.revoke is not None:
        invite_id = args.revoke.strip().lower()
        if len(invite_id) != INVITE_ID_CHARS or not await service.store.expire_invite(
                invite_id, now):
            raise AccountError("no_such_invite", f"no open invite has id {args.revoke!r} "
                               "(see accounts invite --list)")
        print(f"accounts: invite {invite_id} expired")
    else:
        code, expires = await service.invite(ttl_days=args.ttl_days)
        print(code, flush=True)
        say(f"accounts invite: shown once; usable once until {_utc(expires)} UTC "
            f"({args.ttl_days:g} days)")


async def _tokens(tokens: Tokens, args: argparse.Namespace) -> None:
    """Bots and API tokens; a new token alone on stdout (a script reads it), once."""
    action = args.action
    if action == "bot":
        bot = await tokens.create_bot(args.name, None)
        print(f"accounts: created bot {bot.name!r} (id {bot.id}); give it a token with "
              "`accounts token`")
    elif action == "bots":
        print(f"{'NAME':<32} {'ID':>6} {'DISABLED':<8} CREATED (UTC)")
        for bot in await tokens.bots():
            print(f"{bot.name:<32} {bot.id:>6} {'yes' if bot.disabled else 'no':<8} "
                  f"{_utc(bot.created_ts)}")
    elif action == "token":
        owner = await tokens.accounts.find(args.name)
        scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]
        secret, token = await tokens.create(owner, args.label, scopes, None)
        print(secret, flush=True)
        say(f"accounts token: shown once; id {token.id}, scopes {' '.join(token.scopes)}, "
            f"of {owner.name!r}")
    elif action == "tokens":
        print(f"{'ID':<12} {'ACCOUNT':<32} {'NAME':<20} {'SCOPES':<18} {'CREATED (UTC)':<16} "
              "LAST USED (UTC)")
        for token, name in await tokens.every():
            print(f"{token.id:<12} {name:<32} {token.name:<20} {' '.join(token.scopes):<18} "
                  f"{_utc(token.created_ts)} {_utc(token.last_used_ts)}")
    elif not await tokens.revoke(args.token_id, None):
        raise AccountError("no_such_token", f"no token has id {args.token_id!r} (see "
                           "accounts tokens)")
    else:
        print(f"accounts: token {args.token_id} revoked")


def _utc(ts: int | None) -> str:
    """A ms timestamp as `YYYY-MM-DD HH:MM` in UTC (`never` for None)."""
    if ts is None:
        return f"{'never':<16}"
    return f"{datetime.datetime.fromtimestamp(ts / 1000, datetime.UTC):%Y-%m-%d %H:%M}"


def main(argv: Sequence[str]) -> int:
    """The command: 0 when done, 1 if refused or the database failed, 2 for bad arguments."""
    parser = _parser()
    args = parser.parse(argv)
    urls = [args.db]
    if args.action == "invite":
        try:
            check_invite_ttl(args.ttl_days)
        except ValueError as exc:
            parser.error(f"--ttl-days: {exc}")
    if args.db == ":memory:":
        say(f"accounts {args.action}: --db :memory: is a server's own, gone when it stops; "
            "give the file or postgresql:// URL the server uses")
        return 2
    try:
        return run_on_db(f"accounts {args.action}", args.db, lambda: _run(args),
                         creates=args.action == "create", missing=" (create makes one)")
    except AccountError as exc:
        say(f"accounts {args.action}: {exc.code}: {exc.reason}", urls=urls)
        return 1
    except (KeyboardInterrupt, EOFError):
        say(f"accounts {args.action}: interrupted; nothing changed", urls=urls)
        return 130
