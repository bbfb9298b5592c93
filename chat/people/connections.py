"""The engine's records of a connection (Client) and a user, and the counters it keeps."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any, NamedTuple, Protocol

from chat.accounts.model import Account
from chat.limits import TokenBucket
from chat.people.embedding import Embedded
from chat.people.names import name_key
from chat.protocol.frame import Frame, Frames
from chat.protocol.parse import ProtocolError
from chat.protocol.tutorial import TYPED, Dialect


class Peer(Protocol):
    """The transport side of one connection, as the hub sees it."""

    def send(self, frame: Frame) -> None:
        """Queue a frame; never blocks, never raises (a failing peer closes itself)."""

    def send_frames(self, batch: Frames) -> None:
        """Queue frames in order, as send() would one by one."""

    def reply(self, frame: Frame) -> None:
        """Queue a frame the client asked for; its bytes never count as the client being slow."""

    def replies(self, batch: Frames) -> None:
        """Queue frames the client asked for, in order, as reply() would one by one."""

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close the WebSocket with `code`."""


_NO_ROOMS: frozenset[str] = frozenset()


class Client:
    """One WebSocket connection."""

    __slots__ = ("address", "auth", "bucket", "closed", "dialect", "peer", "rooms", "strikes",
                 "typing_at", "user")

    def __init__(self, peer: Peer, address: str, bucket: TokenBucket,
                 auth: Auth | None = None) -> None:
        self.peer = peer
        # The session the upgrade was authenticated with; None for a guest.
        self.auth = auth
        self.address = address
        self.bucket = bucket
        self.strikes = 0  # frames refused in a row by the rate limit
        self.user: User | None = None
        # Typed events, or the tutorial's frames once its first frame is one
        # (chat/protocol/tutorial.py).
        self.dialect: Dialect = TYPED
        # The shared empty set until the first join (most connections of a big idle crowd never
        # join); only join_room() and leave_room() change it.
        self.rooms: AbstractSet[str] = _NO_ROOMS
        # Room -> monotonic time of its last typing notice; made on first use, as most
        # connections never type (an idle connection's every byte counts).
        self.typing_at: dict[str, float] | None = None
        self.closed = False

    def join_room(self, name: str) -> None:
        if not isinstance(self.rooms, set):
            self.rooms = set()
        self.rooms.add(name)

    def leave_room(self, name: str) -> None:
        if isinstance(self.rooms, set):
            self.rooms.discard(name)

    def reply(self, frame: Frame) -> None:
        """Answer the client's own request with a frame that is not a `message` event."""
        self.dialect.reply(self.peer, frame)

    def error(self, event: dict[str, Any]) -> None:
        """Answer a frame that caused an `error` event."""
        self.peer.reply(self.dialect.error(event))

    @property
    def typed(self) -> bool:
        """Whether the connection receives every event type (it is not the tutorial's page)."""
        return self.dialect.typed


class Auth(NamedTuple):
    """Who a connection signed in as: its session and its account (chat/accounts/model.py),
    or the user another application vouches for (`embedded`, --jwt-key; no session), or an
    API token (`scopes` set; `session_id` is `t:<token id>`)."""

    session_id: str
    account: Account | None
    checked: float  # monotonic time the check began: a revocation heard after it still counts
    embedded: Embedded | None = None
    # An API token's scopes (chat/accounts/tokens.py); None: a session, which may do whatever
    # its account may.
    scopes: tuple[str, ...] | None = None
    bot: bool = False  # the account is a bot (marked so in presence and on its messages)

    def may(self, scope: str) -> bool:
        """Whether the connection may act with `scope` (a session may do anything)."""
        return self.scopes is None or scope in self.scopes


class User:
    """A name that is online, with all its connections.

    `party`: its id in direct conversations (an account's `a:<id>`, a guest's `g:<id>`,
    people/identity.py) and the name of its broker channel; `account`: None for a guest.
    """

    __slots__ = ("account", "avatar", "bot", "clients", "guest", "key", "name", "party", "token")

    def __init__(self, name: str, avatar: str, token: str, party: str,
                 account: Account | None = None, guest: bool | None = None,
                 bot: bool = False) -> None:
        self.name = name
        self.key = name_key(name)
        self.avatar = avatar
        self.token = token
        self.party = party
        self.account = account
        # Neither an account nor vouched for by an embedding application (--jwt-key).
        self.guest = account is None if guest is None else guest
        self.bot = bot  # a bot account (chat/accounts/tokens.py): `bot: true` where it shows
        self.clients: set[Client] = set()

    def typed_clients(self) -> set[Client]:
        """The connections that understand every event type."""
        return {client for client in self.clients if client.dialect.typed}


def user_of(client: Client, request: str, **refs: Any) -> User:
    """The connection's user, or ProtocolError('not_joined') for a request that needs one."""
    if client.user is None:
        raise ProtocolError("not_joined", "join first", request=request, **refs)
    return client.user
