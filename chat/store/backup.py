"""`chat_server.py backup FILE TO_FILE`: a consistent copy of a SQLite history file, online.

SQLite's online backup API copies the file page by page while a server goes on writing it
(in WAL mode a reader never blocks the writer). A step that finds the file changed by another
connection makes SQLite start over; under a steady stream of messages a backup in small steps
could start over forever, so once that happens the rest is copied in one step, which reads
one snapshot (the server's writes go on meanwhile; its WAL grows until the step ends).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Sequence

from chat.commands import CommandParser, say
from chat.store.copy_sides import POSTGRES_PREFIXES, UsageError, kind
from chat.store.sqlite_schema import LOCK_TIMEOUT_S, connect, describe

# Pages per step (4 KiB each by default: 16 MiB): progress shows for a big file, and a step
# holds the source's read snapshot only briefly.
STEP_PAGES = 4096
# The least time between two progress lines (s).
PROGRESS_INTERVAL_S = 1.0

PG_DUMP_ADVICE = ("a PostgreSQL history is backed up with pg_dump, e.g. `pg_dump --format=custom"
                  " --file=chat.dump DBNAME`, and restored with pg_restore: see "
                  "docs/deployment.md#backups")


class _Restarted(Exception):
    """The source changed between two steps: SQLite started the backup over."""


def backup(source: str, target: str, *, step_pages: int = STEP_PAGES) -> tuple[int, bool]:
    """Copy the SQLite file `source` into the new file `target`: (pages, whether the rest
    went in one step after the source changed mid-way). Written beside `target`, then renamed,
    so `target` appears only once complete and checked."""
    partial = f"{target}.partial"
    with contextlib.suppress(FileNotFoundError):
        os.remove(partial)
    src = connect(source, lock_timeout_s=LOCK_TIMEOUT_S)  # query_only: never writes it
    try:
        dst = sqlite3.connect(partial)
        try:
            one_step = _copy(src, dst, step_pages)
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"the copy fails its check: {check}")
        finally:
            dst.close()
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise
    finally:
        src.close()
    os.replace(partial, target)
    return pages, one_step


def _copy(src: sqlite3.Connection, dst: sqlite3.Connection, step_pages: int) -> bool:
    """Copy in steps with progress; all at once if the source changes in between."""
    last: list[float] = [time.monotonic(), 0.0]

    def progress(status: int, remaining: int, total: int) -> None:
        if remaining > last[1] > 0:  # more left than a step ago: it started over
            raise _Restarted
        last[1] = remaining
        now = time.monotonic()
        if remaining and now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            print(f"backup: {total - remaining}/{total} pages", flush=True)

    try:
        src.backup(dst, pages=step_pages, progress=progress)
        return False
    except _Restarted:
        src.backup(dst, pages=-1)
        return True


def main(argv: Sequence[str]) -> int:
    """The command: 0 once the copy is complete and checked, 2 for bad arguments, 1 on failure."""
    parser = CommandParser(
        prog="chat_server.py backup", description="Copy a SQLite history file into a new file "
        "with SQLite's online backup API, safe while a server writes it. The copy is a "
        "history file like any other: serve it with --db, or copy it on with copy-history. "
        "For PostgreSQL use pg_dump (docs/deployment.md).")
    parser.add_argument("source", metavar="FILE", help="the SQLite history file (--db)")
    parser.add_argument("target", metavar="TO_FILE", help="the new file (must not exist)")
    parser.add_argument("--step-pages", type=int, default=STEP_PAGES, metavar="N",
                        help=f"pages copied per step (default {STEP_PAGES})")
    args = parser.parse(argv)
    urls = [args.source, args.target]
    if args.step_pages < 1:
        parser.error(f"--step-pages is {args.step_pages}; it must be 1 or more")
    if args.source.startswith(POSTGRES_PREFIXES):
        say(f"backup: {PG_DUMP_ADVICE}", urls=urls)
        return 2
    try:
        for url in urls:
            if kind(url) != "sqlite":
                raise UsageError(f"{url!r}: backup copies a SQLite file into a SQLite file")
        if not os.path.isfile(args.source):
            raise UsageError(f"{args.source!r} is not a file")
        if os.path.exists(args.target):
            raise UsageError(f"{args.target!r} exists; name a new file (a backup never "
                             "overwrites one)")
    except UsageError as exc:
        say(f"backup: {exc}", urls=urls)
        return 2
    started = time.monotonic()
    try:
        pages, one_step = backup(args.source, args.target, step_pages=args.step_pages)
    except (sqlite3.Error, OSError) as exc:
        reason = describe(exc) if isinstance(exc, sqlite3.Error) else str(exc)
        say(f"backup: failed: {reason}", urls=urls)
        return 1
    how = " (the file changed mid-way: the rest went in one step)" if one_step else ""
    print(f"backup: done: {args.target} ({pages} pages) in "
          f"{time.monotonic() - started:.1f} s{how}", file=sys.stdout, flush=True)
    return 0
