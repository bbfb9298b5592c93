"""The messages routes: post to a room or a person, read history, list rooms and members, join
and leave, by an API token (scopes read and write) or a session. chat/node/actions.py decides."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from chat.accounts import AccountService
from chat.accounts.tokens import Tokens
from chat.config import Settings
from chat.node.actions import AccountActions
from chat.node.apiuse import ApiUse
from chat.protocol import events
from chat.protocol.fields import check_room, check_username
from chat.protocol.parse import HISTORY_PAGE_MAX, ROOMS_PAGE_MAX, ProtocolError
from handlers.api.base import ApiError, ApiHandler, Caller

T = TypeVar("T")

# A room or a user name in a path (checked by the handler: check_room, check_username).
ROOM_PATTERN = r"[^/]{1,200}"
NAME_PATTERN = r"[^/]{1,400}"
# The HTTP status of each protocol error code (docs/protocol.md); anything else: 400.
STATUS_OF_PROTOCOL = {
    "no_such_room": 404, "not_online": 404, "not_in_room": 403, "banned": 403, "muted": 403,
    "forbidden": 403, "cid_reused": 409, "room_name_taken": 409, "rate_limited": 429,
    "store_failed": 503, "broker_down": 503, "no_such_message": 404,
    "edit_window_passed": 403, "too_many_reactions": 409,
}


def refused(err: ProtocolError) -> ApiError:
    """A protocol refusal as the API answers it: the same code and reason (and references)."""
    answer = ApiError(STATUS_OF_PROTOCOL.get(err.code, 400), err.code, err.reason)
    answer.body.update({key: value for key, value in err.refs.items()
                        if isinstance(value, str | int)})
    return answer


class ChatApiHandler(ApiHandler):
    """A route that acts on the chat (chat/node/actions.py) for a token or a session."""

    def initialize(self, accounts: AccountService, settings: Settings,  # type: ignore[override]
                   tokens: Tokens, use: ApiUse, actions: AccountActions) -> None:
        super().initialize(accounts, settings)
        self.tokens = tokens
        self.use = use
        self.actions = actions

    async def act(self, action: Awaitable[T]) -> T:
        try:
            return await action
        except ProtocolError as err:
            raise refused(err) from None

    def room(self, raw: str) -> str:
        try:
            return check_room(raw)
        except ProtocolError as err:
            raise refused(err) from None

    def person(self, raw: str) -> str:
        try:
            return check_username(raw)
        except ProtocolError as err:
            raise refused(err) from None

    def number(self, name: str, default: int | None, low: int, high: int) -> int | None:
        """A whole-number query argument within [low, high]; 400 naming it otherwise."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ApiError(400, "invalid_field", f"{name} is {raw[:20]!r}; it must be a whole "
                           f"number from {low} to {high:,}")
        return int(raw)

    def text_and_cid(self) -> tuple[str, str | None]:
        body = self.json_body()
        return self.required(body, "text"), self.optional(body, "cid")

    async def page(self, caller: Caller, room: str | None, peer: str | None) -> None:
        limit = self.number("limit", 50, 1, HISTORY_PAGE_MAX)
        before = self.number("before", None, 1, 2**63 - 1)
        assert limit is not None
        event = await self.act(self.actions.history(caller.account, room, peer, before, limit))
        self.send_json({"messages": event["messages"], "more": event.get("more", False)})


class RoomsHandler(ChatApiHandler):
    """GET: the rooms the caller may see, by name (public ones and its private ones)."""

    SUPPORTED_METHODS = ("GET",)
    ROUTE = "rooms"

    async def get(self) -> None:
        caller = await self.authorized("read")
        limit = self.number("limit", 100, 1, ROOMS_PAGE_MAX)
        assert limit is not None
        after = self.get_query_argument("after", "")
        rooms = await self.act(self.actions.rooms(caller.account, after, limit + 1))
        self.send_json({"rooms": rooms[:limit], "more": len(rooms) > limit})


class RoomMembersHandler(ChatApiHandler):
    """GET: a page of the members of a room the caller is a member of."""

    SUPPORTED_METHODS = ("GET",)
    ROUTE = "members"

    async def get(self, raw_room: str) -> None:
        caller = await self.authorized("read")
        room = self.room(raw_room)
        limit = self.number("limit", 100, 1, ROOMS_PAGE_MAX)
        assert limit is not None
        after = self.get_query_argument("after", "")
        members = await self.act(self.actions.members(caller.account, room, after, limit + 1))
        self.send_json({"room": room, "members": members[:limit], "more": len(members) > limit})


class MembershipHandler(ChatApiHandler):
    """PUT: join a room (scope write); DELETE: leave it."""

    SUPPORTED_METHODS = ("PUT", "DELETE")
    ROUTE = "membership"

    async def put(self, raw_room: str) -> None:
        caller = await self.authorized("write")
        room = self.room(raw_room)
        settings = await self.act(self.actions.join(caller.account, room))
        self.send_json({"room": settings})

    async def delete(self, raw_room: str) -> None:
        caller = await self.authorized("write")
        room = self.room(raw_room)
        await self.act(self.actions.leave(caller.account, room))
        self.set_status(204)
        self.finish()


class RoomMessagesHandler(ChatApiHandler):
    """GET: a page of a room's history; POST: send a message to it (`cid`: idempotent)."""

    SUPPORTED_METHODS = ("GET", "POST")
    ROUTE = "room_messages"

    async def get(self, raw_room: str) -> None:
        caller = await self.authorized("read")
        await self.page(caller, self.room(raw_room), None)

    async def post(self, raw_room: str) -> None:
        caller = await self.authorized("write")
        room = self.room(raw_room)
        text, cid = self.text_and_cid()
        stored, created = await self.act(self.actions.post(caller.account, room, text, cid))
        self.send_json({"message": events.message(stored)}, 201 if created else 200)


class DirectMessagesHandler(ChatApiHandler):
    """GET: a page of the caller's direct conversation with a user; POST: send one."""

    SUPPORTED_METHODS = ("GET", "POST")
    ROUTE = "dm_messages"

    async def get(self, raw_name: str) -> None:
        caller = await self.authorized("read")
        await self.page(caller, None, self.person(raw_name))

    async def post(self, raw_name: str) -> None:
        caller = await self.authorized("write")
        to = self.person(raw_name)
        text, cid = self.text_and_cid()
        stored, created = await self.act(self.actions.direct(caller.account, to, text, cid))
        self.send_json({"message": events.direct(stored)}, 201 if created else 200)

