"""Backend URLs (--db, --broker): which kind each names, checked once, and fit for logs."""

from __future__ import annotations

from urllib.parse import urlsplit

BROKER_URL_FORMS = "memory:// or redis://host:port/db"
REDIS_SCHEMES = ("redis", "rediss")
# What --db accepts for Redis (unix:// is redis-py's socket form).
REDIS_DB_PREFIXES = ("redis://", "rediss://", "unix://")
REDIS_DEFAULT_PORT = 6379
# What --db accepts for PostgreSQL (libpq's two spellings of the scheme).
POSTGRES_DB_PREFIXES = ("postgresql://", "postgres://")


def redacted(url: str) -> str:
    """A URL fit for logs and error messages: its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:" if parts.username else ":"
    return parts._replace(netloc=f"{user}***@{netloc}").geturl()


def broker_kind(url: str) -> str:
    """"memory", "redis", or the scheme of an unsupported broker URL."""
    scheme = urlsplit(url).scheme
    return "redis" if scheme in REDIS_SCHEMES else scheme


def is_redis_db(db: str) -> bool:
    """Whether --db names a Redis server rather than a SQLite file."""
    return db.startswith(REDIS_DB_PREFIXES)


def is_postgres_db(db: str) -> bool:
    """Whether --db names a PostgreSQL database (the history a cluster's nodes share)."""
    return db.startswith(POSTGRES_DB_PREFIXES)


def redis_database(url: str) -> str:
    """The database number a redis:// URL names ("0" when it names none)."""
    return urlsplit(url).path.strip("/") or "0"


def check_broker_url(url: str) -> str:
    """The kind of a broker URL ("memory" or "redis"); ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme == "memory" and not (parts.netloc or parts.path or parts.query):
        return "memory"
    if parts.scheme in REDIS_SCHEMES:
        try:
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            raise ValueError(f"broker URL {redacted(url)!r}: the port is not a number "
                             "0-65535") from None
        if not parts.hostname:
            raise ValueError(f"broker URL {redacted(url)!r} names no host; "
                             f"expected {BROKER_URL_FORMS}")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError(f"broker URL {redacted(url)!r}: the database {db!r} is not a number")
        return "redis"
    raise ValueError(f"broker URL {redacted(url)!r} is not supported; "
                     f"expected {BROKER_URL_FORMS}")
