"""What the admin commands on a server's database (`accounts`, `rooms`, `webhooks`) share:
a SQLite file that is not there is refused (a mistyped path would otherwise become a new,
empty database), and a database that fails is said in one line, its URL's password hidden."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from chat.commands import say
from chat.store.base import StoreError
from chat.store.sqlite_schema import describe
from chat.urls import is_postgres_db


def run_on_db(command: str, db: str, work: Callable[[], Coroutine[Any, Any, int]], *,
              creates: bool = False, missing: str = "") -> int:
    """Run `work` (the command's coroutine) against --db `db`; its exit status, 2 when the
    SQLite file is missing (unless the command `creates` it; `missing` adds to that line), 1
    when the database failed. `command` ("rooms audit") starts each line said. Errors of the
    command's own (a refusal) pass through to the caller."""
    # psycopg warns on stderr when it abandons a connection after an error: the error itself
    # is said below, once, in one line.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    if not is_postgres_db(db) and not creates and not Path(db).exists():
        say(f"{command}: no database at {db!r}{missing}")
        return 2
    try:
        return asyncio.run(work())
    except StoreError as exc:
        say(f"{command}: the database failed: {exc}", urls=[db])
        return 1
    except sqlite3.Error as exc:
        say(f"{command}: the database failed: {describe(exc)}", urls=[db])
        return 1
