"""What signing in adds to a WebSocket handshake: issue 19's handshake target counts it.

Run from the repository root: `.venv/bin/python -m bench.signin [--clients 5000] [--runs 3]
[--db postgresql://...]`. Each run seeds a fresh database file (or, with --db, a fresh schema
in that PostgreSQL database) with --clients sessions, each its own token (written
through the account store, as logins make them, last used an hour ago: an upgrade then also
writes the session's last-seen time, as after a deploy). Then, each on a fresh server, the load
generator opens --clients connections as guests, and as many signed in, every one with its own
session cookie: a reconnect storm. The server's CPU per connection and the storm's length are
the figures (docs/performance.md, "Handshake CPU").
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.env import LOADGEN_CORE, ROOT, SERVER_CORE, BenchError, Json, log
from bench.servers import our_server_spec, run_loadgen, start_server, stop_server
from chat.accounts import open_accounts, sql
from chat.accounts.model import Session
from chat.accounts.service import SESSION_ID_BYTES, TOKEN_BYTES, secret_hash
from chat.people.names import name_key

# Accounts the sessions belong to (sessions per account: --clients / ACCOUNTS): a team's
# members, each signed in on a few devices.
ACCOUNTS = 100
# The store never checks it: no one logs in with a password here.
PASSWORD_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
LAST_USED_S = 3600  # how long ago the seeded sessions were last used (s)
SEED_CHUNK = 1000  # sessions written per transaction


def fresh_database(postgres: str | None, work: Path, number: int) -> str:
    """Run `number`'s --db: a file in `work`, or a new schema in the `postgres` database."""
    if postgres is None:
        return str(work / f"run{number}.db")
    import psycopg

    schema = f"bench_signin_{secrets.token_hex(6)}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{postgres}{'&' if '?' in postgres else '?'}options=-csearch_path%3D{schema}"


async def seed(db: str, count: int, accounts: int = ACCOUNTS) -> tuple[list[str], list[int]]:
    """`count` sessions over `accounts` accounts in the database `db` (session i is account
    i mod `accounts`'s); their tokens, and the accounts' ids in order of creation."""
    store = open_accounts(db)
    await store.start()
    try:
        now = int(time.time() * 1000)
        made = [await store.create_account(f"bench{i}", name_key(f"bench{i}"), None,
                                           PASSWORD_HASH, now)
                for i in range(min(accounts, count))]
        tokens = [secrets.token_urlsafe(TOKEN_BYTES) for _ in range(count)]
        last_used = now - LAST_USED_S * 1000
        rows = []
        for i, token in enumerate(tokens):
            session = Session(secrets.token_urlsafe(SESSION_ID_BYTES),
                              made[i % len(made)].id, last_used, last_used,
                              "127.0.0.1", "bench")
            rows.append((sql.CREATE_SESSION, (
                session.id, session.account_id, session.created_ts, session.last_seen_ts,
                session.address, session.user_agent, secret_hash(token))))
        for start in range(0, len(rows), SEED_CHUNK):
            await store.sql_writes(rows[start:start + SEED_CHUNK])
        return tokens, [account.id for account in made]
    finally:
        await store.close()


def built_loadgen() -> Path:
    """bench/bin/loadgen, or BenchError if it was not built."""
    loadgen = ROOT / "bench" / "bin" / "loadgen"
    if not loadgen.is_file():
        raise BenchError("no load generator: python -m bench.build (or bench/run.py) first")
    return loadgen


def storm(loadgen: Path, db: str, clients: int, cookies: Path | None, logs: Path,
          pinned: bool = True, more: Sequence[str] = ()) -> Json:
    """One fresh server on `db`, `clients` connections opened (with `cookies`: signed in; with
    `more`, the load generator's further arguments); the server and the load generator on
    their cores of bench/env.py unless not `pinned`."""
    spec = our_server_spec(Path(sys.executable), [])
    if spec is None:
        raise BenchError("chat_server.py is missing")
    spec.argv[spec.argv.index(":memory:")] = db
    run = start_server(spec, logs / "signin-server.log", core=SERVER_CORE if pinned else None)
    try:
        args = ["-mode", "idle", "-clients", str(clients), "-idle-msgs", "0", "-settle", "0.5"]
        if cookies is not None:
            args += ["-cookies", str(cookies)]
        args += more
        out = run_loadgen(loadgen, run, tuple(args), deadline=120,
                          core=LOADGEN_CORE if pinned else None,
                          server_core=SERVER_CORE if pinned else "-1")
    finally:
        stop_server(run)
    if out.get("connections") != clients:
        raise BenchError(f"{out.get('connections')} of {clients} connections opened: {out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000, help="connections per storm")
    parser.add_argument("--runs", type=int, default=3, help="guest and signed-in storms each")
    parser.add_argument("--db", default=None, metavar="postgresql://...",
                        help="seed and serve from a new schema of this database each run")
    options = parser.parse_args(argv)
    loadgen = built_loadgen()
    print("| run | guests: CPU per connection | signed in: CPU per connection | "
          "signed in: storm length |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-signin-") as folder:
        work = Path(folder)
        for number in range(1, options.runs + 1):
            db = fresh_database(options.db, work, number)
            tokens, _ = asyncio.run(seed(db, options.clients))
            cookies = work / f"run{number}.cookies"
            cookies.write_text("".join(f"chat_session={token}\n" for token in tokens))
            log(f"run {number}: {options.clients} guests, then as many signed in")
            guests = storm(loadgen, db, options.clients, None, work)
            signed = storm(loadgen, db, options.clients, cookies, work)
            print(f"| {number} | {guests['server_handshake_cpu_us']:.0f} us "
                  f"| {signed['server_handshake_cpu_us']:.0f} us "
                  f"| {signed['connect_seconds']:.2f} s |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
