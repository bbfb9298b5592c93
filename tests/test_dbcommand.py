"""chat/dbcommand.py, what the admin commands on a server's database share, through each of
them as a person runs it: a missing SQLite file and a failing database, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serverproc import assert_one_line_error, run

pytestmark = pytest.mark.subprocess

# Each command with arguments that would read the database.
COMMANDS = [("accounts", "list"), ("rooms", "audit"), ("webhooks", "list", "--room", "ops")]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_missing_file_is_refused_and_not_made(command: tuple[str, ...],
                                                tmp_path: Path) -> None:
    """A mistyped SQLite path exits 2 in one line naming it, and no file appears there."""
    missing = tmp_path / "typo.db"
    result = run(command[0], command[1], "--db", str(missing), *command[2:])
    assert result.returncode == 2
    line = assert_one_line_error(result)
    assert f"{' '.join(command[:2])}: no database at {str(missing)!r}" in line
    assert not missing.exists()


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_database_that_fails_is_one_line_without_its_password(
        command: tuple[str, ...]) -> None:
    """A PostgreSQL server that cannot be reached: exit 1, one line, the password hidden."""
    url = "postgresql://chat:s3cret-pw@127.0.0.1:1/chat"
    result = run(command[0], command[1], "--db", url, *command[2:])
    assert result.returncode == 1
    line = assert_one_line_error(result)
    assert f"{' '.join(command[:2])}: the database failed:" in line
    assert "Connection refused" in line
    assert "s3cret-pw" not in result.stdout + result.stderr
