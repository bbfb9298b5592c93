"""Every setting: name, unit, default, help and validation (read by chat/options.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chat.accounts.policy import AccountPolicy
from chat.people.identity import AVATAR_KINDS
from chat.store.postgres_options import (
    CONNECT_TIMEOUT_S,
    POOL_SIZE,
    POOL_TIMEOUT_S,
    STATEMENT_TIMEOUT_S,
)
from chat.urls import BROKER_URL_FORMS, broker_kind, is_postgres_db, is_redis_db, redacted


class ConfigError(ValueError):
    """A setting has a value it cannot take."""


def _meta(unit: str, help: str) -> dict[str, str]:
    return {"unit": unit, "help": help}


@dataclass(frozen=True, slots=True)
class Settings:
    """The server's settings; the defaults are what `python chat_server.py` runs with."""

    port: int = field(default=8000, metadata=_meta("", "TCP port to listen on"))
    address: str = field(
        default="127.0.0.1",
        metadata=_meta("", "address to listen on; 0.0.0.0 (or a LAN address) serves the LAN"),
    )
    allowed_origins: list[str] = field(
        default_factory=list,
        metadata=_meta("", "extra origins (scheme://host[:port]) allowed to open /ws; "
                           "the page's own host is always allowed"),
    )
    allowed_hosts: list[str] = field(
        default_factory=list,
        metadata=_meta("", "extra host names the server answers to (the Host header); localhost, "
                           "IP addresses and --address always are; * turns the check off"),
    )
    xheaders: bool = field(
        default=False,
        metadata=_meta("", "trust X-Real-IP/X-Forwarded-For (only behind a proxy you run)"),
    )
    rate_limit: float = field(
        default=10.0,
        metadata=_meta("frames/s", "frames a connection may send per second; 0 turns it off"),
    )
    rate_burst: int = field(
        default=20, metadata=_meta("frames", "frames a connection may send at once")
    )
    rate_abuse_frames: int = field(
        default=40,
        metadata=_meta("frames", "refused frames in a row after which the connection is "
                                 "closed with 1008"),
    )
    max_connections: int = field(
        default=10_000, metadata=_meta("connections", "open WebSockets in all; 0 = unlimited")
    )
    max_connections_per_ip: int = field(
        default=100,
        metadata=_meta("connections", "open WebSockets per client address; 0 = unlimited"),
    )
    max_unfinished_per_ip: int = field(
        default=100,
        metadata=_meta("connections", "HTTP connections per client address that have not yet "
                                      "sent a complete request (or become WebSockets); more "
                                      "are closed at once; 0 = unlimited"),
    )
    header_timeout: float = field(
        default=10.0,
        metadata=_meta("s", "a new connection that has not sent its request's headers by then "
                            "is closed (and a request body must arrive as quickly)"),
    )
    idle_timeout: float = field(
        default=30.0,
        metadata=_meta("s", "a kept-alive HTTP connection without a next request by then is "
                            "closed"),
    )
    max_message_bytes: int = field(
        default=64 * 1024,
        metadata=_meta("bytes", "largest inbound frame; larger ones close the connection "
                                "with 1009"),
    )
    max_text_chars: int = field(
        default=4000, metadata=_meta("characters", "longest message text")
    )
    max_rooms_per_connection: int = field(
        default=20, metadata=_meta("rooms", "rooms one connection may be in")
    )
    max_rooms: int = field(default=10_000, metadata=_meta("rooms", "rooms the server holds"))
    room_creations_per_user: int = field(
        default=60,
        metadata=_meta("rooms/hour", "rooms not open on this server that one user may open "
                                     "(join) per hour; 0 = unlimited"),
    )
    room_creations_per_ip: int = field(
        default=120,
        metadata=_meta("rooms/hour", "rooms not open on this server that one client address "
                                     "may open (join) per hour; 0 = unlimited"),
    )
    max_queue_bytes: int = field(
        default=1024 * 1024,
        metadata=_meta("bytes", "bytes queued for a client that is not reading before it "
                                "is dropped"),
    )
    max_reply_queue_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata=_meta("bytes", "bytes of replies a client asked for (history, presence, "
                                "errors) that may wait unread on top of max-queue-bytes"),
    )
    send_threads: int = field(
        default=1,
        metadata=_meta("threads", "threads that share each large flush of frames to the "
                                  "clients' sockets (1: the event loop's alone); more than 1 "
                                  "lets one process use more cores for its sends"),
    )
    ping_interval: float = field(
        default=20.0,
        metadata=_meta("s", "how often the server pings each client; 0 = never"),
    )
    ping_timeout: float = field(
        default=20.0,
        metadata=_meta("s", "a client that has not answered a ping by then is closed "
                            "(at most ping-interval)"),
    )
    typing_interval: float = field(
        default=1.0,
        metadata=_meta("s", "least time between two typing notices of one connection "
                            "in one room"),
    )
    notice_interval: float = field(
        default=1.0,
        metadata=_meta("s", "join and leave notices that follow one another in a room within "
                            "this time are held and sent as each user's net change; 0 = off"),
    )
    presence_max_members: int = field(
        default=500,
        metadata=_meta("members", "members listed in a room's presence and in one page of "
                                  "`members` (the count is always the whole room's)"),
    )
    join_grace: float = field(
        default=30.0,
        metadata=_meta("s", "a user whose last connection to a room closes and who is back "
                            "within this time (on any server) makes no leave and no join "
                            "notice; 0 = a notice at once"),
    )
    notices_max_members: int = field(
        default=0,
        metadata=_meta("members", "rooms with more members than this send no join and leave "
                                  "notices (presence still counts them); 0 = no limit"),
    )
    unread_max: int = field(
        default=1000,
        metadata=_meta("messages", "unread messages of a conversation counted (and searched "
                                   "for mentions) on a join; past it the count says `more`"),
    )
    away_after: float = field(
        default=300.0,
        metadata=_meta("s", "a user none of whose connections sent a message, typing or "
                            "`active` frame for this long is away"),
    )
    shutdown_grace: float = field(
        default=2.0,
        metadata=_meta("s", "time clients get to answer the 1001 close on shutdown"),
    )
    db: str = field(
        default="chat.db",
        metadata=_meta("", "SQLite file that keeps the history; :memory: for a throwaway run;"
                           " postgresql://user:password@host:port/dbname keeps it in PostgreSQL"
                           " (a cluster's nodes share it)"),
    )
    db_pool_size: int = field(
        default=POOL_SIZE,
        metadata=_meta("connections", "with --db postgresql://: connections this node holds "
                                      "(the writer's, retention's, the rest for history reads);"
                                      " PostgreSQL's max_connections bounds the sum over nodes"),
    )
    db_pool_timeout: float = field(
        default=POOL_TIMEOUT_S,
        metadata=_meta("s", "with --db postgresql://: how long an append or a read waits for a "
                            "free connection before the sender gets store_failed"),
    )
    db_connect_timeout: float = field(
        default=CONNECT_TIMEOUT_S,
        metadata=_meta("s", "with --db postgresql://: how long opening a connection may take "
                            "(at start-up and when the pool reconnects)"),
    )
    db_statement_timeout: float = field(
        default=STATEMENT_TIMEOUT_S,
        metadata=_meta("s", "with --db postgresql://: how long one statement may run or wait "
                            "for a lock before it fails (and its messages get store_failed)"),
    )
    broker: str = field(
        default="memory://",
        metadata=_meta("", "how processes share live events: memory:// (this process alone) or "
                           "redis://host:port/db (a cluster; --db must be a postgresql:// URL)"),
    )
    node_heartbeat: float = field(
        default=5.0,
        metadata=_meta("s", "with a Redis broker: how often this node renews its liveness and "
                            "looks for dead nodes"),
    )
    node_timeout: float = field(
        default=15.0,
        metadata=_meta("s", "with a Redis broker: a node silent this long is dead; its users "
                            "leave (at least twice the heartbeat)"),
    )
    history_per_room: int = field(
        default=10_000, metadata=_meta("messages", "messages kept per room or conversation")
    )
    history_days: float = field(
        default=0.0, metadata=_meta("days", "messages older than this are deleted; 0 = keep")
    )
    room_retention_days: float = field(
        default=30.0,
        metadata=_meta("days", "a room or direct conversation whose newest message is older "
                               "than this is deleted, history and all (never general); "
                               "0 = keep"),
    )
    history_on_join: int = field(
        default=50, metadata=_meta("messages", "recent messages sent on joining a room")
    )
    history_max_bytes: int = field(
        default=0,
        metadata=_meta("bytes", "most bytes of history sent at once (on joining, resuming or "
                                "in one page: the newest messages that fit); below "
                                "max-queue-bytes; 0 = a quarter of max-queue-bytes"),
    )
    history_bytes_per_s: int = field(
        default=256 * 1024,
        metadata=_meta("bytes/s", "bytes of history pages a connection may read per second "
                                  "(burst: history-max-bytes); 0 turns it off"),
    )
    edit_window: float = field(
        default=24 * 60 * 60.0,
        metadata=_meta("s", "how long after sending its author may edit a message; 0 = always "
                            "(deleting has no limit)"),
    )
    max_reactions: int = field(
        default=20,
        metadata=_meta("reactions", "most distinct emoji reactions one message holds"),
    )
    # Search (issue 16, chat/search/): each bounds one request's work on the database.
    search_query_max_chars: int = field(
        default=200, metadata=_meta("characters", "longest `search` query (1-1000)"))
    search_page_max: int = field(
        default=50, metadata=_meta("results", "most results one `search` page returns (1-200)"))
    search_offset_max: int = field(
        default=1000,
        metadata=_meta("results", "deepest result a `search` page may start at: the database "
                                  "ranks every hit before the page (0-100000)"))
    search_rank_max: int = field(
        default=10_000,
        metadata=_meta("messages", "hits one `search` ranks: the newest this many; older ones "
                                   "are found by narrowing it (dates, room, person); no fewer "
                                   "than the deepest offset plus a page"))
    search_per_minute: int = field(
        default=30,
        metadata=_meta("searches/min", "searches one user may run per minute (in bursts of up "
                                       "to 5); 0 turns the limit off"))
    avatars: str = field(
        default="initials",
        metadata=_meta("", "initials: pictures drawn by the server, no browser asks another host "
                           "and no hash of an email leaves the server; gravatar: Gravatar URLs "
                           "(the MD5 of the email goes to every browser, and from them to "
                           "Gravatar)"),
    )
    compression: bool = field(
        default=False,
        metadata=_meta("", "offer permessage-deflate (costs CPU per recipient, and memory per "
                           "connection: see compression-window-bits)"),
    )
    compression_window_bits: int = field(
        default=12,
        metadata=_meta("bits", "deflate window per compressed connection (9-15): 2**bits "
                               "bytes each way; larger compresses a little better"),
    )
    compression_mem_level: int = field(
        default=5,
        metadata=_meta("zlib memLevel", "deflate state per compressed connection (1-9): "
                                        "2**(level+9) bytes; larger is a little faster"),
    )
    registration: str = field(
        default="open",
        metadata=_meta("", "who may create an account: open (anyone), invite (with a "
                           "single-use code an admin makes), closed (admins only, with "
                           "`chat_server.py accounts create`)"),
    )
    session_idle_days: float = field(
        default=30.0,
        metadata=_meta("days", "a sign-in session unused this long ends"),
    )
    session_max_days: float = field(
        default=365.0,
        metadata=_meta("days", "a sign-in session ends this long after the login, used or not "
                               "(no less than the idle limit)"),
    )
    login_throttle_after: int = field(
        default=5,
        metadata=_meta("failures", "failed logins (per name and per client address) before "
                                   "the next attempt must wait"),
    )
    login_throttle_first: float = field(
        default=1.0,
        metadata=_meta("s", "the first wait after login-throttle-after failures; each further "
                            "failure doubles it"),
    )
    login_throttle_max: float = field(
        default=900.0,
        metadata=_meta("s", "the longest wait between login attempts: the owner is never "
                            "locked out for longer"),
    )
    revocation_poll: float = field(
        default=1.0,
        metadata=_meta("s", "how often a server reads what the admin command or another node "
                            "revoked (a disabled account, an ended session); PostgreSQL also "
                            "announces each at once"),
    )
    jwt_key: str = field(
        default="", repr=False,  # a secret: never in a log line
        metadata=_meta("", "lets another application sign its users' connection tokens "
                           "(JWT with sub, name, exp): an HS256 secret of at least 32 bytes, "
                           "or the path of a PEM public key file (RS256 or ES256); empty: off"),
    )
    guests: bool = field(
        default=True,
        metadata=_meta("", "let people chat without an account, under a name no account holds "
                           "(marked as guests); off: only signed-in accounts may join"),
    )
    account_sweep_interval: float = field(
        default=600.0,
        metadata=_meta("s", "how often a server deletes expired sessions (closing their "
                            "sockets), old counters of failed logins, old revocations and "
                            "expired passkey challenges; several servers on one database "
                            "sweep in turn"),
    )
    rp_id: str = field(
        default="",
        metadata=_meta("", "passkeys' Relying Party ID: the host name they are bound to "
                           "(chat.example.org); empty: the host name each request came to "
                           "(localhost works as is). Passkeys made under one ID never work "
                           "under another: set it where the page has a public name"),
    )
    rp_origins: list[str] = field(
        default_factory=list,
        metadata=_meta("", "origins (scheme://host[:port]) a passkey may be made or used "
                           "from, comma-separated; empty: the request's own (https behind a "
                           "proxy needs --xheaders)"),
    )
    rp_name: str = field(
        default="Simple Chat",
        metadata=_meta("characters", "the name an authenticator shows for this chat (1-64)"),
    )
    room_creation: str = field(
        default="explicit",
        metadata=_meta("", "explicit: only the `room` frame (an account's) creates a room, and "
                           "a join of an unknown name gets no_such_room, the same answer as a "
                           "private room one is not in, so a private room's name stays secret; "
                           "join: joining a room that does not exist creates it (public, owned "
                           "by the joiner if signed in), as before rooms had owners"),
    )
    # Webhooks (issue 17: chat/hooks/, docs/api.md "Webhooks")
    webhook_max_body_bytes: int = field(
        default=256 * 1024,
        metadata=_meta("bytes", "largest body an incoming webhook (/hooks/...) accepts; "
                                "Alertmanager's grouped alerts reach tens of KiB"),
    )
    webhook_max_text_chars: int = field(
        default=8000,
        metadata=_meta("characters", "longest text an incoming webhook may post (after its "
                                     "attachments and blocks are reduced to text)"),
    )
    webhook_rate: float = field(
        default=1.0,
        metadata=_meta("posts/s", "posts one incoming webhook may make per second, on average"),
    )
    webhook_burst: int = field(
        default=20,
        metadata=_meta("posts", "posts one incoming webhook may make at once"),
    )
    webhook_timeout: float = field(
        default=10.0,
        metadata=_meta("s", "how long an outgoing webhook's call may take, connecting included"),
    )
    webhook_retries: int = field(
        default=3,
        metadata=_meta("calls", "further tries of an outgoing call after a 5xx, a timeout or "
                                "a refused connection (0: none)"),
    )
    webhook_backoff: float = field(
        default=1.0,
        metadata=_meta("s", "wait before an outgoing call's first retry; doubled for each next"),
    )
    webhook_queue: int = field(
        default=1000,
        metadata=_meta("calls", "outgoing calls waiting at most; more are dropped and counted "
                                "(the chat never waits on a webhook)"),
    )
    webhook_allow_private: bool = field(
        default=False,
        metadata=_meta("", "let outgoing webhooks call loopback, private and link-local "
                           "addresses (refused by default: server-side request forgery)"),
    )
    api_rate_limit: float = field(
        default=10.0,
        metadata=_meta("requests/s", "HTTP API requests one API token may make per second, "
                                     "across the cluster with --broker redis:// (else on this "
                                     "server; 429 with Retry-After above it); 0 turns it off"),
    )
    api_rate_burst: int = field(
        default=20,
        metadata=_meta("requests", "HTTP API requests one API token may make at once"),
    )
    # Files and images (issue 18: chat/files/, handlers/api/files.py, docs/files.md)
    files_dir: str = field(
        default="",
        metadata=_meta("", "folder of uploaded files (by content hash); empty: `files` beside "
                           "the SQLite database, a temporary folder (deleted at exit) with "
                           ":memory:, `files` in the working folder with postgresql://; a "
                           "cluster's nodes must all mount the same folder"),
    )
    max_upload_bytes: int = field(
        default=25 * 1024 * 1024,
        metadata=_meta("bytes", "the largest file one upload may be (413 as soon as a body "
                                "passes it)"),
    )
    upload_quota_bytes: int = field(
        default=1024 * 1024 * 1024,
        metadata=_meta("bytes", "the bytes of files one account may have stored at once "
                                "(its uploads, attached or not); 0 = no limit"),
    )
    max_image_pixels: int = field(
        default=50_000_000,
        metadata=_meta("pixels", "an image larger than this (width x height) is never decoded "
                                 "(decompression bombs): it is kept as a plain file"),
    )
    files_per_message: int = field(
        default=10,
        metadata=_meta("files", "uploads one message may carry"),
    )
    unattached_upload_ttl: float = field(
        default=86_400.0,
        metadata=_meta("s", "an upload not attached to any message this long after it was "
                            "made is deleted"),
    )
    image_workers: int = field(
        default=2,
        metadata=_meta("threads", "threads that decode images, strip their metadata and make "
                                  "thumbnails (never the event loop)"),
    )
    files_sweep_interval: float = field(
        default=600.0,
        metadata=_meta("s", "how often a server deletes files no message carries any more "
                            "(deleted, removed, or past retention) and uploads never attached"),
    )

    def __post_init__(self) -> None:
        errors = [
            f"--{flag(name)} is {value}; it must be {rule}"
            for name, value, rule, ok in (
                ("port", self.port, "between 0 and 65535", 0 <= self.port <= 65535),
                ("rate_limit", self.rate_limit, "0 or more", self.rate_limit >= 0),
                ("rate_burst", self.rate_burst, "1 or more", self.rate_burst >= 1),
                ("api_rate_limit", self.api_rate_limit, "0 or more", self.api_rate_limit >= 0),
                ("api_rate_burst", self.api_rate_burst, "1 or more", self.api_rate_burst >= 1),
                ("rate_abuse_frames", self.rate_abuse_frames, "1 or more",
                 self.rate_abuse_frames >= 1),
                ("max_connections", self.max_connections, "0 or more",
                 self.max_connections >= 0),
                ("max_connections_per_ip", self.max_connections_per_ip, "0 or more",
                 self.max_connections_per_ip >= 0),
                ("max_unfinished_per_ip", self.max_unfinished_per_ip, "0 or more",
                 self.max_unfinished_per_ip >= 0),
                ("header_timeout", self.header_timeout, "more than 0", self.header_timeout > 0),
                ("idle_timeout", self.idle_timeout, "more than 0", self.idle_timeout > 0),
                ("max_message_bytes", self.max_message_bytes, "at least 1024",
                 self.max_message_bytes >= 1024),
                ("max_text_chars", self.max_text_chars, "1 or more", self.max_text_chars >= 1),
                ("max_rooms_per_connection", self.max_rooms_per_connection, "1 or more",
                 self.max_rooms_per_connection >= 1),
                ("max_rooms", self.max_rooms, "1 or more", self.max_rooms >= 1),
                ("room_creations_per_user", self.room_creations_per_user, "0 or more",
                 self.room_creations_per_user >= 0),
                ("room_creations_per_ip", self.room_creations_per_ip, "0 or more",
                 self.room_creations_per_ip >= 0),
                ("max_queue_bytes", self.max_queue_bytes, "at least 1024",
                 self.max_queue_bytes >= 1024),
                ("max_reply_queue_bytes", self.max_reply_queue_bytes, "0 or more",
                 self.max_reply_queue_bytes >= 0),
                ("compression_window_bits", self.compression_window_bits, "between 9 and 15",
                 9 <= self.compression_window_bits <= 15),
                ("compression_mem_level", self.compression_mem_level, "between 1 and 9",
                 1 <= self.compression_mem_level <= 9),
                # 64: well past the cores one process's GIL lets sends overlap on.
                ("send_threads", self.send_threads, "between 1 and 64",
                 1 <= self.send_threads <= 64),
                ("ping_interval", self.ping_interval, "0 or more", self.ping_interval >= 0),
                ("ping_timeout", self.ping_timeout, "more than 0 and at most ping-interval",
                 self.ping_interval == 0 or 0 < self.ping_timeout <= self.ping_interval),
                ("typing_interval", self.typing_interval, "0 or more",
                 self.typing_interval >= 0),
                ("notice_interval", self.notice_interval, "0 or more",
                 self.notice_interval >= 0),
                # 2,000 members with the widest names make a frame of ~470 KB: within the
                # default max-queue-bytes with room to spare.
                ("presence_max_members", self.presence_max_members, "between 1 and 2000",
                 1 <= self.presence_max_members <= 2000),
                # A day: a connection away longer than that has left, whatever comes next.
                ("join_grace", self.join_grace, "between 0 and 86400",
                 0 <= self.join_grace <= 86_400),
                ("notices_max_members", self.notices_max_members, "0 or more",
                 self.notices_max_members >= 0),
                # Counting reads that many messages per conversation on a join: bounded.
                ("unread_max", self.unread_max, "between 1 and 10000",
                 1 <= self.unread_max <= 10_000),
                # Under a second, every pause between keystrokes would be "away".
                ("away_after", self.away_after, "between 1 and 86400",
                 1 <= self.away_after <= 86_400),
                ("history_per_room", self.history_per_room, "1 or more",
                 self.history_per_room >= 1),
                ("history_days", self.history_days, "0 or more", self.history_days >= 0),
                ("room_retention_days", self.room_retention_days, "0 or more",
                 self.room_retention_days >= 0),
                ("history_on_join", self.history_on_join, "between 0 and 200",
                 0 <= self.history_on_join <= 200),
                ("history_max_bytes", self.history_max_bytes,
                 f"0, or at least 1024 and below --max-queue-bytes ({self.max_queue_bytes})",
                 self.history_max_bytes == 0
                 or 1024 <= self.history_max_bytes < self.max_queue_bytes),
                ("history_bytes_per_s", self.history_bytes_per_s, "0 or more",
                 self.history_bytes_per_s >= 0),
                ("edit_window", self.edit_window, "0 or more", self.edit_window >= 0),
                # Each distinct emoji is a line under the message: a few dozen fill a screen.
                ("max_reactions", self.max_reactions, "between 1 and 100",
                 1 <= self.max_reactions <= 100),
                ("search_query_max_chars", self.search_query_max_chars, "between 1 and 1000",
                 1 <= self.search_query_max_chars <= 1000),
                # 200 results of ~400 bytes: a frame of ~80 KB, as a history page.
                ("search_page_max", self.search_page_max, "between 1 and 200",
                 1 <= self.search_page_max <= 200),
                ("search_offset_max", self.search_offset_max, "between 0 and 100000",
                 0 <= self.search_offset_max <= 100_000),
                # Ranking reads each of these hits: a million is seconds of work per search.
                ("search_rank_max", self.search_rank_max,
                 f"between search-offset-max + search-page-max "
                 f"({self.search_offset_max + self.search_page_max}) and 1000000",
                 self.search_offset_max + self.search_page_max <= self.search_rank_max
                 <= 1_000_000),
                ("search_per_minute", self.search_per_minute, "0 or more",
                 self.search_per_minute >= 0),
                ("shutdown_grace", self.shutdown_grace, "0 or more", self.shutdown_grace >= 0),
                # 1,000: far above any useful pool, far below what would exhaust PostgreSQL.
                ("db_pool_size", self.db_pool_size, "between 1 and 1000",
                 1 <= self.db_pool_size <= 1000),
                ("db_pool_timeout", self.db_pool_timeout, "more than 0",
                 self.db_pool_timeout > 0),
                ("db_connect_timeout", self.db_connect_timeout, "more than 0",
                 self.db_connect_timeout > 0),
                # Under 1 ms PostgreSQL's statement_timeout would read as 0: no limit at all.
                ("db_statement_timeout", self.db_statement_timeout, "at least 0.001",
                 self.db_statement_timeout >= 0.001),
                ("node_heartbeat", self.node_heartbeat, "more than 0", self.node_heartbeat > 0),
                ("node_timeout", self.node_timeout, "at least 2 x node-heartbeat",
                 self.node_timeout >= 2 * self.node_heartbeat),
                ("avatars", self.avatars, " or ".join(AVATAR_KINDS),
                 self.avatars in AVATAR_KINDS),
                ("room_creation", self.room_creation, "join or explicit",
                 self.room_creation in ("join", "explicit")),
                ("registration", self.registration, "open, invite or closed",
                 self.registration in ("open", "invite", "closed")),
                ("session_idle_days", self.session_idle_days, "more than 0",
                 self.session_idle_days > 0),
                ("session_max_days", self.session_max_days,
                 f"at least --session-idle-days ({self.session_idle_days})",
                 self.session_max_days >= self.session_idle_days),
                ("login_throttle_after", self.login_throttle_after, "1 or more",
                 self.login_throttle_after >= 1),
                ("login_throttle_first", self.login_throttle_first, "more than 0",
                 self.login_throttle_first > 0),
                ("login_throttle_max", self.login_throttle_max,
                 f"at least --login-throttle-first ({self.login_throttle_first})",
                 self.login_throttle_max >= self.login_throttle_first),
                ("revocation_poll", self.revocation_poll, "more than 0",
                 self.revocation_poll > 0),
                ("account_sweep_interval", self.account_sweep_interval, "more than 0",
                 self.account_sweep_interval > 0),
                ("broker", redacted(self.broker), BROKER_URL_FORMS,
                 self.broker_kind in ("memory", "redis")),
                # Below 1 KiB not even Slack's smallest payload fits.
                ("webhook_max_body_bytes", self.webhook_max_body_bytes, "at least 1024",
                 self.webhook_max_body_bytes >= 1024),
                ("webhook_max_text_chars", self.webhook_max_text_chars, "1 or more",
                 self.webhook_max_text_chars >= 1),
                ("webhook_rate", self.webhook_rate, "more than 0", self.webhook_rate > 0),
                ("webhook_burst", self.webhook_burst, "1 or more", self.webhook_burst >= 1),
                ("webhook_timeout", self.webhook_timeout, "more than 0",
                 self.webhook_timeout > 0),
                # Ten retries with doubling waits already span ~17 minutes at 1 s.
                ("webhook_retries", self.webhook_retries, "between 0 and 10",
                 0 <= self.webhook_retries <= 10),
                ("webhook_backoff", self.webhook_backoff, "0 or more",
                 self.webhook_backoff >= 0),
                ("webhook_queue", self.webhook_queue, "1 or more", self.webhook_queue >= 1),
                # Files (issue 18). A body of 0 bytes is a valid (empty) file; a limit of 0 none.
                ("max_upload_bytes", self.max_upload_bytes, "1 or more",
                 self.max_upload_bytes >= 1),
                ("upload_quota_bytes", self.upload_quota_bytes,
                 f"0 or at least --max-upload-bytes ({self.max_upload_bytes})",
                 self.upload_quota_bytes == 0
                 or self.upload_quota_bytes >= self.max_upload_bytes),
                # Below a 100x100 thumbnail's worth every photo would be refused.
                ("max_image_pixels", self.max_image_pixels, "at least 10000",
                 self.max_image_pixels >= 10_000),
                ("files_per_message", self.files_per_message, "between 1 and 100",
                 1 <= self.files_per_message <= 100),
                ("unattached_upload_ttl", self.unattached_upload_ttl, "at least 60",
                 self.unattached_upload_ttl >= 60),
                ("image_workers", self.image_workers, "between 1 and 64",
                 1 <= self.image_workers <= 64),
                ("files_sweep_interval", self.files_sweep_interval, "more than 0",
                 self.files_sweep_interval > 0),
            )
            if not ok
        ]
        if is_redis_db(self.db):
            errors.append(f"--db {redacted(self.db)} names Redis, which no longer keeps history: "
                          "give --db a postgresql:// URL (a cluster) or a SQLite file")
        elif self.broker_kind == "redis" and not is_postgres_db(self.db):
            errors.append(f"--broker is {redacted(self.broker)} but --db is {redacted(self.db)}; "
                          "a cluster needs a history all its nodes share: give --db a "
                          "postgresql://user:password@host:port/dbname URL")
        errors.extend(passkey_setting_errors(self.rp_id, self.rp_origins, self.rp_name))
        if self.jwt_key:
            from chat.people.embedding import JwtError, Verifier  # cryptography: only if used

            try:
                Verifier.from_setting(self.jwt_key)
            except JwtError as exc:  # its message never holds the secret
                errors.append(str(exc))
        if errors:
            raise ConfigError("; ".join(errors))

    @property
    def broker_kind(self) -> str:
        """"memory", "redis", or the scheme of an unsupported --broker URL."""
        return broker_kind(self.broker)

    @property
    def account_policy(self) -> AccountPolicy:
        """--registration, the session lifetimes and the login throttle, for AccountService."""
        return AccountPolicy(
            registration="invite" if self.registration == "invite" else
            "closed" if self.registration == "closed" else "open",
            session_idle_days=self.session_idle_days, session_max_days=self.session_max_days,
            throttle_after=self.login_throttle_after,
            throttle_first_s=self.login_throttle_first, throttle_max_s=self.login_throttle_max)

    @property
    def history_bytes(self) -> int:
        """The bytes of history sent at once: --history-max-bytes, or its default."""
        return self.history_max_bytes or self.max_queue_bytes // 4

    @property
    def allowed_origins_set(self) -> frozenset[str]:
        """--allowed-origins, normalized for comparison with an Origin header."""
        return frozenset(origin.rstrip("/").lower() for origin in self.allowed_origins)


# A host name as an RP ID: labels of letters, digits and hyphens, dots between (no scheme,
# port or path); an IP address is no RP ID (browsers refuse it).
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")
_ORIGIN = re.compile(r"(https?)://([^/:?#]+)(:[0-9]{1,5})?")
RP_NAME_MAX_CHARS = 64  # shown in the authenticator's prompt: a short name


def passkey_setting_errors(rp_id: str, origins: list[str], rp_name: str) -> list[str]:
    """What is wrong with --rp-id, --rp-origins and --rp-name, one phrase each."""
    errors = []
    if rp_id and (not _HOST_NAME.fullmatch(rp_id) or rp_id.replace(".", "").isdigit()):
        errors.append(f"--rp-id is {rp_id[:100]!r}; it must be a lower-case host name "
                      "(chat.example.org, localhost), without scheme, port or path")
    for origin in origins:
        match = _ORIGIN.fullmatch(origin)
        if match is None:
            errors.append(f"--rp-origins has {origin[:100]!r}; each must be "
                          "http(s)://host[:port], without a path")
        elif rp_id and not (match[2] == rp_id or match[2].endswith("." + rp_id)):
            errors.append(f"--rp-origins has {origin[:100]!r}, whose host is not --rp-id "
                          f"({rp_id}) nor under it")
    if not 1 <= len(rp_name.strip()) <= RP_NAME_MAX_CHARS:
        errors.append(f"--rp-name is {rp_name[:100]!r}; it must be 1 to {RP_NAME_MAX_CHARS} "
                      "characters")
    return errors


def flag(name: str) -> str:
    """The command-line spelling of a setting's name."""
    return name.replace("_", "-")
