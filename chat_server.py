"""Simple Chat: `python chat_server.py` serves the page at / and the chat at /ws."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.options
from tornado.httputil import HTTPServerRequest
from tornado.log import access_log
from tornado.web import Application, RequestHandler

from chat.accounts import AccountService, open_accounts
from chat.accounts.passkeys import PasskeyService
from chat.accounts.sweep import Sweeper
from chat.accounts.tokens import Tokens
from chat.broker import Broker, BrokerError, open_broker
from chat.commands import COMMANDS, commands_help, run_command
from chat.config import ConfigError, Settings
from chat.files.service import FILE_ID_PATTERN, Files
from chat.files.sweep import FileSweeper, files_folder
from chat.hooks.counters import HookCounters
from chat.hooks.service import Webhooks
from chat.node.apiuse import ApiUse
from chat.node.hub import Hub
from chat.node.metrics import Metrics
from chat.options import FALSE_WORDS, TRUE_WORDS, define_options, from_options, parse_bool
from chat.protocol.shortcodes import expand_shortcodes_in_prose
from chat.roster.base import Roster, RosterError
from chat.store import HistoryStore, PostgresOptions, StoreError, open_store
from chat.urls import broker_kind, redacted
from handlers.api.accounts import AccountsHandler, MeHandler
from handlers.api.audit import AuditHandler
from handlers.api.base import ApiNotFound
from handlers.api.changes import (
    EMOJI_PATTERN,
    MESSAGE_ID_PATTERN,
    DirectMessageHandler,
    DirectReactionHandler,
    RoomMessageHandler,
    RoomReactionHandler,
)
from handlers.api.files import FileHandler, UploadHandler
from handlers.api.messages import (
    NAME_PATTERN,
    ROOM_PATTERN,
    DirectMessagesHandler,
    MembershipHandler,
    RoomMembersHandler,
    RoomMessagesHandler,
    RoomsHandler,
)
from handlers.api.openapi import OpenApiHandler
from handlers.api.passkeys import (
    PASSKEY_ID_PATTERN,
    OnePasskeyHandler,
    PasskeyAccountsHandler,
    PasskeyChallengesHandler,
    PasskeySessionsHandler,
    PasskeysHandler,
)
from handlers.api.sessions import (
    SESSION_ID_PATTERN,
    CurrentSessionHandler,
    SessionHandler,
    SessionsHandler,
)
from handlers.api.tokens import (
    BOT_NAME_PATTERN,
    TOKEN_ID_PATTERN,
    AdminTokenHandler,
    AdminTokensHandler,
    BotsHandler,
    BotTokensHandler,
    OneBotHandler,
    OneTokenHandler,
    TokensHandler,
)
from handlers.api.webhooks import HOOK_ID_PATTERN, WebhookHandler, WebhooksHandler
from handlers.chatsocket import ChatSocket
from handlers.health import HealthHandler, LoopLagMonitor, MetricsHandler
from handlers.hooks import SECRET_PATTERN as HOOK_SECRET_PATTERN
from handlers.hooks import IncomingHookHandler
from handlers.hosts import HostCheck, WrongHostHandler
from handlers.httpserver import chat_http_server
from handlers.keepalive import Keepalive
from handlers.outbox import Flusher
from handlers.pages import PageHandler, ResponseHeaders, StaticHandler, page_folder
from handlers.tornado_internals import option_type, request_summary

if TYPE_CHECKING:  # redis is imported only for a redis:// broker
    from chat.node.apilimit import SharedBuckets

log = logging.getLogger("chat.server")


class ChatApplication(Application):
    """The Tornado application, holding the services its handlers were given."""

    hub: Hub
    store: HistoryStore
    accounts: AccountService | None
    files: Files | None
    metrics: Metrics
    hosts: HostCheck

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        """The route's handler, or for a Host the server does not serve, a 400 on any path."""
        if not self.hosts.allows(request.host):
            return self.get_handler_delegate(request, WrongHostHandler)
        return super().find_handler(request, **kwargs)


def log_request(handler: RequestHandler) -> None:
    """Tornado's access log, but WebSocket upgrades (101) only at debug level.

    Formatting a line per connection cost ~45 us of the handshake's ~400 us; the connection
    count is in /healthz and /metrics.
    """
    status = handler.get_status()
    if status == 101:
        if not access_log.isEnabledFor(logging.DEBUG):
            return
        log_method = access_log.debug
    elif status < 400:
        log_method = access_log.info
    elif status < 500 or isinstance(handler, HealthHandler | ChatSocket):
        # A 503 from /healthz is a state it reports, and one from /ws the connection limit
        # doing its work: neither is a fault (a flood of refusals must not fill the error log).
        log_method = access_log.warning
    else:
        log_method = access_log.error
    log_method("%d %s %.2fms", status, request_summary(handler),
               1000.0 * handler.request.request_time())


def shared_buckets(settings: Settings, hub: Hub) -> SharedBuckets | None:
    """The API tokens' rate limit across a Redis cluster's nodes (issue 17's bots and tokens
    part, chat/node/apilimit.py); None with the memory broker (each process its own)."""
    if broker_kind(settings.broker) != "redis" or settings.api_rate_limit <= 0:
        return None
    from chat.node.apilimit import SharedBuckets  # redis only for a redis:// broker

    buckets = SharedBuckets(settings.broker, settings.api_rate_limit, settings.api_rate_burst)
    hub.closing.append(buckets.close)
    return buckets


def make_app(
    settings: Settings, store: HistoryStore, broker: Broker | None = None,
    roster: Roster | None = None, accounts: AccountService | None = None,
    files: Files | None = None,
) -> ChatApplication:
    """The route table: everything the server answers, and what each handler is given.

    The stores (history, and the accounts' under `accounts`) are started by the caller, who
    closes them after the app. Without a broker and roster the app is one process alone
    (memory://); without `accounts` it has no accounts (guests only, as before issue 14);
    without `files` (which needs accounts) no uploads.
    """
    # The Go tutorial's `clients` and `broadcast`, one per app.
    metrics = Metrics()
    hub = Hub(settings, store, broker, roster, observe_store_latency=metrics.store_latency.observe,
              accounts=accounts, files=files)
    flusher = Flusher(settings.send_threads)
    hub.closing.append(flusher.close)
    metrics.report(hub.status, flusher)
    keepalive = Keepalive(settings.ping_interval, settings.ping_timeout)
    socket_args = {"hub": hub, "flusher": flusher, "keepalive": keepalive, "settings": settings}
    routes: list[Any] = [
        (r"/", PageHandler, {"avatars": settings.avatars, "registration": settings.registration,
                             "guests": settings.guests,
                             "room_creation": settings.room_creation}),
        (r"/ws", ChatSocket, socket_args),
        (r"/healthz", HealthHandler, {"status": hub.status}),
        (r"/metrics", MetricsHandler, {"metrics": metrics}),
        # /static/... is served by StaticHandler through `static_path` below.
    ]
    if accounts is not None:  # the HTTP API (docs/api.md)
        api_args = {"accounts": accounts, "settings": settings}
        # API tokens (issue 17): resolved and counted for the routes that take them; the
        # sockets' own, so that requests and upgrades share their coalesced look-ups
        tokens = hub.signins.tokens or Tokens(accounts)
        use = ApiUse(settings.api_rate_limit, settings.api_rate_burst, metrics.registry,
                     shared_buckets(settings, hub))
        token_args = {**api_args, "tokens": tokens, "use": use}
        routes += [
            (r"/api/v1/accounts", AccountsHandler, api_args),
            # POST takes an embedding application's token too (--jwt-key: names, guests, JWT)
            (r"/api/v1/sessions", SessionsHandler, {**api_args, "jwt": hub.signins.jwt}),
            (r"/api/v1/sessions/current", CurrentSessionHandler, api_args),
            (rf"/api/v1/sessions/({SESSION_ID_PATTERN})", SessionHandler, api_args),
            (r"/api/v1/me", MeHandler, api_args),
            # Rooms (issue 15): the moderation audit log, admins only.
            (r"/api/v1/audit", AuditHandler, token_args),
            (r"/api/v1/openapi.json", OpenApiHandler, api_args),
        ]
        # Passkeys (WebAuthn; handlers/api/passkeys.py, docs/accounts.md)
        passkey_args = {**api_args, "passkeys": PasskeyService(accounts)}
        routes += [
            (r"/api/v1/passkey-challenges", PasskeyChallengesHandler, passkey_args),
            (r"/api/v1/passkeys", PasskeysHandler, passkey_args),
            (rf"/api/v1/passkeys/({PASSKEY_ID_PATTERN})", OnePasskeyHandler, passkey_args),
            (r"/api/v1/passkey-accounts", PasskeyAccountsHandler, passkey_args),
            (r"/api/v1/passkey-sessions", PasskeySessionsHandler, passkey_args),
        ]
        # Webhooks (issue 17; chat/hooks/, docs/api.md "Webhooks"): management, and the
        # incoming hooks' secret URLs; outgoing calls start from the send path.
        hooks = Webhooks(settings, accounts.store, hub.messages, HookCounters(metrics.registry))
        hub.messages.on_room_message = hooks.outgoing.message
        hub.closing.append(hooks.close)
        # Managed by sessions or admin-scope API tokens (issue 17's bots and tokens part).
        hook_args = {**token_args, "hooks": hooks}
        routes += [
            (r"/api/v1/webhooks", WebhooksHandler, hook_args),
            (rf"/api/v1/webhooks/({HOOK_ID_PATTERN})", WebhookHandler, hook_args),
            (rf"/hooks/({HOOK_SECRET_PATTERN})", IncomingHookHandler,
             {"hooks": hooks, "settings": settings}),
        ]
        # Tokens, bots and the messages routes (issue 17; handlers/api/tokens.py, messages.py)
        chat_args = {**token_args, "actions": hub.actions}
        routes += [
            (r"/api/v1/tokens", TokensHandler, token_args),
            (rf"/api/v1/tokens/({TOKEN_ID_PATTERN})", OneTokenHandler, token_args),
            (r"/api/v1/admin/tokens", AdminTokensHandler, token_args),
            (rf"/api/v1/admin/tokens/({TOKEN_ID_PATTERN})", AdminTokenHandler, token_args),
            (r"/api/v1/bots", BotsHandler, token_args),
            (rf"/api/v1/bots/({BOT_NAME_PATTERN})/tokens", BotTokensHandler, token_args),
            # Revoking a bot (issue 17's bots and tokens part: DELETE disables it)
            (rf"/api/v1/bots/({BOT_NAME_PATTERN})", OneBotHandler, token_args),
            (r"/api/v1/rooms", RoomsHandler, chat_args),
            (rf"/api/v1/rooms/({ROOM_PATTERN})/members", RoomMembersHandler, chat_args),
            (rf"/api/v1/rooms/({ROOM_PATTERN})/membership", MembershipHandler, chat_args),
            (rf"/api/v1/rooms/({ROOM_PATTERN})/messages", RoomMessagesHandler, chat_args),
            (rf"/api/v1/dms/({NAME_PATTERN})/messages", DirectMessagesHandler, chat_args),
            # Edits, deletes and reactions (issue 16's changes, handlers/api/changes.py)
            (rf"/api/v1/rooms/({ROOM_PATTERN})/messages/({MESSAGE_ID_PATTERN})",
             RoomMessageHandler, chat_args),
            (rf"/api/v1/dms/({NAME_PATTERN})/messages/({MESSAGE_ID_PATTERN})",
             DirectMessageHandler, chat_args),
            (rf"/api/v1/rooms/({ROOM_PATTERN})/messages/({MESSAGE_ID_PATTERN})/reactions/"
             rf"({EMOJI_PATTERN})", RoomReactionHandler, chat_args),
            (rf"/api/v1/dms/({NAME_PATTERN})/messages/({MESSAGE_ID_PATTERN})/reactions/"
             rf"({EMOJI_PATTERN})", DirectReactionHandler, chat_args),
        ]
        if files is not None:  # Files (issue 18: handlers/api/files.py, docs/files.md)
            file_args = {**api_args, "files": files}
            routes += [
                (r"/api/v1/uploads", UploadHandler, file_args),
                (rf"/api/v1/files/({FILE_ID_PATTERN})(?:/(thumbnail))?", FileHandler,
                 file_args),
            ]
        routes += [
            (r"/api/.*", ApiNotFound, api_args),  # JSON 404s, not the HTML page's
        ]
    app = ChatApplication(
        routes,
        log_function=log_request,
        template_path=str(page_folder("templates")),
        static_path=str(page_folder("static")),
        static_handler_class=StaticHandler,
        # No websocket_ping_interval: handlers/keepalive.py pings every connection from one timer.
        websocket_max_message_size=settings.max_message_bytes,
        transforms=[ResponseHeaders],
    )
    app.hosts = HostCheck([*settings.allowed_hosts, settings.address])
    app.hub = hub
    app.store = store
    app.accounts = accounts
    app.files = files
    app.metrics = metrics
    return app


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one: each connection is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# Objects allocated (less those freed) between two collections of the young generation;
# Python's default is 700. Each young collection promotes whatever is alive at that moment,
# frames in flight included, and every quarter of the long-lived heap promoted so brings a full
# collection: one walk over every connection's objects, ~100 ms at 1,000 connections on the
# 2-core machine, the p99 of its window. At 10,000 the young collections stay under 3 ms and a
# steady load of 10,000 deliveries/s made no full collection in 75 s, against one every ~6 s
# (docs/performance.md, "p99 in every window").
GC_YOUNG_OBJECTS = 10_000


def settle_heap() -> None:
    """Keep start-up objects out of every later garbage collection, and collect the young
    generation less often (GC_YOUNG_OBJECTS).

    What importing Tornado and the emoji tables made lives as long as the process; left in the
    collector's generations, each full collection walks it again (~6 ms of pause here).
    """
    expand_shortcodes_in_prose(":robot:")  # builds the shortcode table now, before the freeze
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])


def open_cluster(settings: Settings) -> tuple[Broker, Roster | None]:
    """The broker for --broker, and with Redis the cluster's roster (None: one process)."""
    if settings.broker_kind != "redis":
        return open_broker(settings.broker), None
    from chat.roster.redis import RedisRoster

    broker = open_broker(settings.broker)
    roster = RedisRoster(settings.broker, heartbeat=settings.node_heartbeat,
                         timeout=settings.node_timeout)
    return broker, roster


async def serve(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM; then close every connection with 1001 and return 0."""
    postgres = PostgresOptions(
        pool_size=settings.db_pool_size, pool_timeout_s=settings.db_pool_timeout,
        connect_timeout_s=settings.db_connect_timeout,
        statement_timeout_s=settings.db_statement_timeout)
    try:
        store = open_store(settings.db, per_conversation=settings.history_per_room,
                           days=settings.history_days, room_days=settings.room_retention_days,
                           postgres=postgres)
    except ValueError as exc:
        print(f"chat_server: {exc}", file=sys.stderr)
        return 2
    try:
        await store.start()
    except StoreError as exc:
        print(f"chat_server: cannot open the history database {redacted(settings.db)!r}: {exc}",
              file=sys.stderr)
        return 2
    # Accounts live in the same database; on PostgreSQL they share the history's pool.
    account_store = open_accounts(settings.db, postgres=postgres,
                                  pool=getattr(store, "pool", None),
                                  revocation_poll_s=settings.revocation_poll)
    try:
        await account_store.start()
    except StoreError as exc:
        print(f"chat_server: cannot open the accounts in {redacted(settings.db)!r}: {exc}",
              file=sys.stderr)
        await store.close()
        return 2
    accounts = AccountService(account_store, settings.account_policy)
    # Expired sessions, old failure counters and revocations (chat/accounts/sweep.py).
    sweeper = Sweeper(accounts, settings.account_sweep_interval, settings.revocation_poll)
    sweeper.start()
    # Files (issue 18): a folder of their own; with :memory: a temporary one, gone at exit
    # (made, as any files folder, by the first upload).
    folder = files_folder(settings.files_dir, settings.db)
    temporary_folder = folder is None
    if folder is None:
        folder = Path(tempfile.gettempdir()) / f"chat-files-{os.getpid()}-{os.urandom(4).hex()}"
    files = Files.of(settings, account_store, store, folder)
    file_sweeper = FileSweeper(files, settings.files_sweep_interval)

    async def close_stores() -> None:
        await file_sweeper.close()
        files.close()
        if temporary_folder:
            shutil.rmtree(folder, ignore_errors=True)
        await sweeper.close()
        await account_store.close()
        await store.close()

    try:
        files.disk.prepare()
    except OSError as exc:
        print(f"chat_server: --files-dir: cannot use {str(folder)!r}: {exc.strerror}",
              file=sys.stderr)
        await close_stores()
        return 2
    file_sweeper.start()

    try:
        broker, roster = open_cluster(settings)
    except ValueError as exc:
        print(f"chat_server: --broker: {exc}", file=sys.stderr)
        await close_stores()
        return 2
    app = make_app(settings, store, broker, roster, accounts, files)
    try:
        await app.hub.start()
    except (BrokerError, RosterError) as exc:
        print(f"chat_server: cannot start the broker {redacted(settings.broker)!r}: {exc}",
              file=sys.stderr)
        await close_stores()
        return 2
    settle_heap()
    server = chat_http_server(app, settings)
    try:
        server.listen(settings.port, settings.address)
    except OSError as exc:
        print(f"chat_server: cannot listen on {settings.address}:{settings.port}: "
              f"{exc.strerror}", file=sys.stderr)
        await app.hub.close()
        await close_stores()
        return 2
    lag = LoopLagMonitor(app.metrics)
    lag.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("serving http://%s:%d/ (WebSocket at /ws)", settings.address, settings.port)
    await stop.wait()

    log.info("shutting down: closing %d connections", len(app.hub.clients))
    lag.stop()
    server.stop()
    app.hub.close_all()
    try:
        await asyncio.wait_for(app.hub.drained(), settings.shutdown_grace)
    except TimeoutError:
        log.warning("%d connections did not close in time", len(app.hub.clients))
    await server.close_all_connections()
    await app.hub.close()
    await close_stores()
    return 0


def join_option_values(argv: list[str], parser: tornado.options.OptionParser) -> list[str]:
    """Accept `--port 8000` as well as tornado.options' own `--port=8000`, and `--guests off`
    (a boolean option alone is on; the word after it is its value only if it is on or off)."""
    joined = list(argv[:1])
    words = argv[1:]
    at = 0
    while at < len(words):
        word = words[at]
        at += 1
        name = word[2:].replace("_", "-") if word.startswith("--") and "=" not in word else ""
        kind = option_type(parser, name)
        has_next = at < len(words)
        if kind is not None and has_next and (
                kind is not bool or words[at].lower() in (*TRUE_WORDS, *FALSE_WORDS)):
            word = f"{word}={words[at]}"
            at += 1
        joined.append(word)
    return joined


def parse_command_line(parser: tornado.options.OptionParser, argv: list[str]) -> set[str]:
    """Parse options one by one, so that a bad value is reported with its option's name.

    Returns the names of the options the command line gave.
    """
    words = join_option_values(argv, parser)
    given: set[str] = set()
    for word in words[1:]:
        name, has_value, value = word.partition("=")
        if not name.startswith("-"):  # tornado.options would stop there and ignore the rest
            raise ConfigError(f"{word!r} is not an option (a value goes after `=` or a space, "
                              "and on/off after `=`: --xheaders=off)")
        try:
            if has_value and option_type(parser, name.lstrip("-").replace("_", "-")) is bool:
                word = f"{name}={'true' if parse_bool(value) else 'false'}"
            parser.parse_command_line([words[0], word], final=False)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        given.add(name.lstrip("-").replace("_", "-"))
    parser.run_parse_callbacks()
    return given


def main(argv: list[str] | None = None) -> int:
    argv = argv if argv is not None else sys.argv
    if len(argv) > 1 and argv[1] in COMMANDS:  # copy-history, backup: a command, not serving
        return run_command(argv[1], argv[2:])
    if "--help" in argv[1:]:
        print(commands_help(), file=sys.stderr)  # then tornado.options' own help, on stderr
    parser = tornado.options.options
    env_errors = define_options(parser)
    try:
        given = parse_command_line(parser, argv)
        for name, error in env_errors.items():
            if name not in given:  # the command line overrides a bad environment value
                raise error
        settings = from_options(parser)
    except (ValueError, tornado.options.Error) as exc:  # ConfigError is a ValueError
        print(f"chat_server: {exc}", file=sys.stderr)
        return 2
    raise_open_files_limit()
    try:
        import uvloop  # the `fast` extra
    except ImportError:
        pass
    else:
        if not os.environ.get("CHAT_NO_UVLOOP"):
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
