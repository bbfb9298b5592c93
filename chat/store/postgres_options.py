"""The PostgreSQL store's connection settings: pool size and timeouts (no psycopg import)."""

from __future__ import annotations

import dataclasses

# Connections per store: the writer's, retention's, and the rest for concurrent reads. Each
# node holds this many, so PostgreSQL's max_connections (100 by default) bounds the nodes.
POOL_SIZE = 6
# How long an append or a read waits for a connection (while PostgreSQL is unreachable, say)
# before it fails: as SQLite's lock timeout, better reported to the sender than stored late.
POOL_TIMEOUT_S = 2.0
# How long opening a connection may take before start-up (or a write) gives up: a server that
# does not answer is reported, not waited for.
CONNECT_TIMEOUT_S = 5.0
# How long one statement may wait (for a lock, say) before it fails: a message that cannot be
# stored within this is better reported to its sender than delivered late (as SQLite's lock
# timeout).
STATEMENT_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class PostgresOptions:
    """How a PostgresStore connects: --db-pool-size, --db-pool-timeout, --db-connect-timeout
    and --db-statement-timeout (validated by Settings; checked again here for direct use)."""

    pool_size: int = POOL_SIZE  # connections
    pool_timeout_s: float = POOL_TIMEOUT_S
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    statement_timeout_s: float = STATEMENT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ValueError(f"pool_size={self.pool_size} must be 1 or more")
        for name in ("pool_timeout_s", "connect_timeout_s", "statement_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be more than 0")

    @property
    def statement_timeout_ms(self) -> int:
        """statement_timeout as PostgreSQL takes it (whole ms, at least 1: 0 would mean none)."""
        return max(1, round(self.statement_timeout_s * 1000))
