"""What a reconnect storm costs once every client also rejoins its rooms, as after a deploy.

Run from the repository root: `.venv/bin/python -m bench.rejoin [--clients 5000] [--rooms 3]
[--accounts N] [--messages 200] [--missed 5] [--runs 3] [--db postgresql://...]`. Each run
seeds a fresh database with bench/signin.py's sessions (of --accounts accounts: by default
half as many as clients, each user on two devices), --rooms public rooms that every account is
a member of, --messages messages in each (by the accounts in turn), and each account's read mark
--missed messages before each room's end. Then, on a fresh server, the load generator opens
--clients connections signed in, and each sends what a reloaded page sends: a `join` of every
room with `since` (it lacks the last --missed messages) and `changes` (it holds every change).
The storm ends when every client has had every room's `unread`, the last reply to a join
(docs/protocol.md). The figures are the server's CPU per client, for its upgrade alone and
for its upgrade and rejoins, and the storm's length (docs/performance.md, "Rejoining rooms").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.env import BenchError, Json, log
from bench.signin import built_loadgen, fresh_database, seed, storm
from chat.accounts import open_accounts
from chat.people.identity import account_party, avatar_url
from chat.rooms.store import RoomStore
from chat.store import open_store
from chat.store.base import ReadMarks

# What the storm's server keeps (chat_server.py's defaults): the seed must not outgrow it.
PER_CONVERSATION = 10_000  # messages kept per room, more than --messages
# The load generator counts a client ready once it has had this many of these: one per join.
LAST_REPLY = '"type":"unread"'


def room_name(number: int) -> str:
    """The seeded room `number`'s name."""
    return f"team{number}"


async def seed_rooms(db: str, accounts: Sequence[int], rooms: int, messages: int,
                     missed: int) -> None:
    """`rooms` public rooms in `db`, each with every account a member, `messages` messages
    and every account's read mark `missed` before its last."""
    store = open_accounts(db)
    await store.start()
    try:
        now = int(time.time() * 1000)
        room_store = RoomStore(store)
        for number in range(rooms):
            await room_store.create(room_name(number), "public", "", accounts[0], now)
            await asyncio.gather(*(room_store.add_member(room_name(number), account, now)
                                   for account in accounts[1:]))
    finally:
        await store.close()
    history = open_store(db, per_conversation=PER_CONVERSATION, days=0)
    assert isinstance(history, ReadMarks)  # SQLite's and PostgreSQL's stores keep them
    await history.start()
    try:
        for number in range(rooms):
            for i in range(messages):
                author = accounts[i % len(accounts)]
                name = f"bench{i % len(accounts)}"
                await history.append(room_name(number), username=name,
                                     avatar=avatar_url(None, name), text=f"message {i}",
                                     ts=int(time.time() * 1000), author=account_party(author))
            await asyncio.gather(*(history.mark_read(account_party(account), room_name(number),
                                                     messages - missed)
                                   for account in accounts))
    finally:
        await history.close()


def greetings(rooms: int, messages: int, missed: int) -> str:
    """The -greet line every client sends: a resuming join of each room, tab-separated."""
    return "\t".join(json.dumps({"type": "join", "room": room_name(number),
                                 "since": messages - missed, "changes": 0},
                                separators=(",", ":"))
                     for number in range(rooms)) + "\n"


def rejoin_storm(loadgen: Path, db: str, clients: int, cookies: Path, greet: Path,
                 logs: Path, pinned: bool = True) -> Json:
    """storm() with every client rejoining as `greet` says; every client must be answered
    without an error."""
    out = storm(loadgen, db, clients, cookies, logs, pinned,
                more=["-greet", str(greet), "-greet-reply", LAST_REPLY])
    if out.get("greeted") != clients or out.get("greet_errors"):
        raise BenchError(f"{out.get('greeted')} of {clients} clients rejoined, "
                         f"{out.get('greet_errors')} errors: {out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000, help="connections per storm")
    parser.add_argument("--accounts", type=int, default=None,
                        help="accounts the clients sign in as (default: half as many: each "
                             "user on two devices)")
    parser.add_argument("--rooms", type=int, default=3, help="rooms each client rejoins")
    parser.add_argument("--messages", type=int, default=200, help="messages seeded per room")
    parser.add_argument("--missed", type=int, default=5,
                        help="messages per room each client lacks (and has not read)")
    parser.add_argument("--runs", type=int, default=3, help="storms, each on a fresh database")
    parser.add_argument("--db", default=None, metavar="postgresql://...",
                        help="seed and serve from a new schema of this database each run")
    options = parser.parse_args(argv)
    if not 0 < options.missed < options.messages:
        raise BenchError("--missed must be 1 or more and less than --messages")
    users = options.accounts or max(1, options.clients // 2)
    loadgen = built_loadgen()
    print("| run | upgrade: CPU per client | upgrade and rejoins: CPU per client | "
          "storm length |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-rejoin-") as folder:
        work = Path(folder)
        greet = work / "greet"
        greet.write_text(greetings(options.rooms, options.messages, options.missed))
        for number in range(1, options.runs + 1):
            db = fresh_database(options.db, work, number)
            tokens, accounts = asyncio.run(seed(db, options.clients, users))
            asyncio.run(seed_rooms(db, accounts, options.rooms, options.messages,
                                   options.missed))
            cookies = work / f"run{number}.cookies"
            cookies.write_text("".join(f"chat_session={token}\n" for token in tokens))
            log(f"run {number}: {options.clients} clients rejoin {options.rooms} rooms")
            out = rejoin_storm(loadgen, db, options.clients, cookies, greet, work)
            print(f"| {number} | {out['server_handshake_cpu_us']:.0f} us "
                  f"| {out['server_ready_cpu_us']:.0f} us "
                  f"| {out['ready_seconds']:.2f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
