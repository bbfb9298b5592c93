"""The commands `python chat_server.py COMMAND ...` runs instead of serving: table and parser."""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import NoReturn
from urllib.parse import urlsplit

from chat.urls import redacted

# name: (module with main(argv) -> int, one line for --help). Imported only when run.
COMMANDS = {
    "copy-history": ("chat.store.copy",
                     "FROM TO: copy a history store (and its accounts) into another, e.g. "
                     "a SQLite file, or an earlier version's redis:// history, into "
                     "postgresql://... "
                     "(resumable; the target must not be served meanwhile)"),
    "backup": ("chat.store.backup",
               "FILE TO_FILE: an online backup of a SQLite history file, safe while a server "
               "writes it (for PostgreSQL use pg_dump: docs/deployment.md)"),
    "accounts": ("chat.accounts.cli",
                 "create|list|disable|enable|reset-password|promote|demote|invite --db URL: "
                 "manage accounts in a server's database, SQLite or PostgreSQL (no restart)"),
    "rooms": ("chat.rooms.cli",
              "audit --db URL [--room R] [--limit N]: read the rooms' moderation audit log "
              "(who kicked, banned, muted, changed roles or topics, when)"),
    "webhooks": ("chat.hooks.cli",
                 "list|create|revoke --db URL: rooms' incoming webhooks (Slack-format POSTs to "
                 "/hooks/SECRET) and outgoing ones (signed calls to a URL on a trigger word)"),
}


def commands_help() -> str:
    """The lines --help shows before the serving options."""
    lines = ["Commands (each has its own --help):"]
    for name, (_, summary) in COMMANDS.items():
        lines.append(f"  chat_server.py {name} " + summary.split(":")[0])
        lines += textwrap.wrap(summary.split(":", 1)[1].strip(), width=76,
                               initial_indent="      ", subsequent_indent="      ")
    lines.append("Without a command, chat_server.py serves the chat:")
    return "\n".join(lines)


def run_command(name: str, argv: Sequence[str]) -> int:
    """Run command `name` with its arguments; its exit status."""
    module = importlib.import_module(COMMANDS[name][0])
    main: Callable[[Sequence[str]], int] = module.main
    return main(argv)


class CommandParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (passwords redacted) and exit 2, as a bad
    setting is when serving."""

    _words: Sequence[str] = ()

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        """The parsed arguments; a usage error names the words given with passwords hidden."""
        self._words = list(argv)
        return self.parse_args(argv)

    def error(self, message: str) -> NoReturn:
        say(f"{self.prog.split()[-1]}: {message} (see --help)", urls=self._words)
        sys.exit(2)


def say(line: str, *, urls: Sequence[str] = ()) -> None:
    """One line on stderr, `chat_server: ...`, with the passwords of `urls` shown as ***."""
    print(f"chat_server: {scrub(line, urls)}", file=sys.stderr, flush=True)


def scrub(text: str, urls: Sequence[str]) -> str:
    """`text` with each URL in it redacted, and each URL's password, wherever it appears."""
    for url in urls:
        text = text.replace(url, redacted(url))
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            text = text.replace(password, "***")
    return text
