"""GET /api/v1/audit: the rooms' moderation audit log, for server admins only."""

from __future__ import annotations

from chat.accounts import AccountService
from chat.accounts.tokens import Tokens
from chat.config import Settings
from chat.node.apiuse import ApiUse
from chat.protocol.commands import ProtocolError
from chat.protocol.parse import check_room
from chat.rooms.store import RoomStore
from chat.store.base import StoreError
from handlers.api.base import ApiError, ApiHandler

AUDIT_PAGE_MAX = 1000  # entries one request returns at most (a page of the admin's table)


class AuditHandler(ApiHandler):
    """The latest moderation actions (of one room with ?room=), newest first."""

    SUPPORTED_METHODS = ("GET",)
    ROUTE = "audit"

    def initialize(self, accounts: AccountService, settings: Settings,
                   tokens: Tokens | None = None, use: ApiUse | None = None) -> None:
        super().initialize(accounts, settings)
        self.tokens = tokens  # an admin's token with the admin scope reads it too
        self.use = use

    async def get(self) -> None:
        if not (await self.authorized("admin")).admin:
            raise ApiError(403, "forbidden", "only server admins may read the audit log")
        room = self.get_query_argument("room", None)
        if room is not None:
            try:
                room = check_room(room)
            except ProtocolError as exc:
                raise ApiError(400, "invalid_room", exc.reason) from None
        raw = self.get_query_argument("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= AUDIT_PAGE_MAX:
            raise ApiError(400, "invalid_field", f"limit is {raw[:20]!r}; it must be a whole "
                           f"number from 1 to {AUDIT_PAGE_MAX:,}")
        try:
            entries = await RoomStore(self.accounts.store).audit_log(room, int(raw))
        except StoreError:
            raise ApiError(503, "store_failed", "the audit log cannot be read now; try again "
                           "shortly") from None
        self.send_json({"entries": [entry.as_json() for entry in entries]})
