"""A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl from Debian's package."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import START_TIMEOUT_S, free_port

# Debian's postgresql package puts the server binaries here, one folder per major version.
BIN_GLOB = "/usr/lib/postgresql/*/bin"
# The superuser the cluster is made with; trust authentication on 127.0.0.1 (no password).
SUPERUSER = "postgres"


def find_postgres_bin() -> Path | None:
    """The folder with initdb and pg_ctl (the newest version), if PostgreSQL is installed."""
    found = sorted((Path(p) for p in glob.glob(BIN_GLOB) if os.access(f"{p}/initdb", os.X_OK)),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if found:
        return found[-1]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path is not None else None


def postgres_bin() -> Path:
    """find_postgres_bin() for a test: a missing one skips the test here but fails it in CI."""
    found = find_postgres_bin()
    if found is not None:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("PostgreSQL's initdb is missing: scripts/bootstrap test installs it")
    pytest.skip("PostgreSQL's initdb is missing here; run scripts/bootstrap test "
                "(CI fails instead)")


class PostgresCluster:
    """A PostgreSQL server of the test session's own, in a temporary directory.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` system
    user the package creates, and its commands run as that user (runuser); otherwise as the
    current user. It listens on 127.0.0.1 on a free port, its socket in its own directory.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        # Not under pytest's tmp_path: that is root's alone, and the server may not be root.
        self.dir = Path(tempfile.mkdtemp(prefix="chat-pg-"))
        self.data = self.dir / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, SUPERUSER, SUPERUSER)
            self._as = ["runuser", "-u", SUPERUSER, "--"]

    def url(self, dbname: str = "postgres") -> str:
        """A postgresql:// URL for database `dbname` (a password trust authentication ignores,
        so logs and errors show whether it is redacted)."""
        return f"postgresql://{SUPERUSER}:secret@127.0.0.1:{self.port}/{dbname}"

    def _run(self, tool: str, *args: str, pin: tuple[str, ...] = ()) -> None:
        """Run one of the cluster's tools as its owner (after `pin`, a taskset prefix)."""
        done = subprocess.run([*pin, *self._as, str(self.bindir / tool), *args],
                              capture_output=True, text=True, timeout=START_TIMEOUT_S * 2,
                              check=False)
        if done.returncode != 0:
            raise AssertionError(f"{tool} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        """Make the cluster: trust on local connections, no fsync at init (a test's data)."""
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")

    def start(self, *, durable: bool = False, core: str | None = None) -> None:
        """Start the server and wait until it accepts connections; fsync off unless `durable`
        (a test's data need not survive a power cut, only a server restart or kill), on the
        `core`s given (a `taskset -c` list: the benchmark pins it)."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        if not durable:
            options += " -c fsync=off -c full_page_writes=off"
        pin = ("taskset", "-c", core) if core is not None else ()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                  "-t", str(int(START_TIMEOUT_S)), "-o", options, "start", pin=pin)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (clients disconnected cleanly) or `immediate` (as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def create_schema(self) -> str:
        """A new empty schema, with a name of its own; a URL whose connections use it.

        A schema rather than a database: CREATE DATABASE takes a second or two on a busy
        machine, CREATE SCHEMA milliseconds.
        """
        import psycopg

        name = f"test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started cluster, removed (server stopped, directory deleted) afterwards."""
    cluster = PostgresCluster(postgres_bin())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
