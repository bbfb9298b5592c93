"""The message-changes routes: edit and delete a message, add and take back a reaction, in a room
or a direct conversation, by an API token (scope write) or a session. The rights are the
socket's (chat/history/changes.py, through chat/node/actions.py), and every reader is told
live, as when a page makes the change."""

from __future__ import annotations

from chat.protocol import events
from chat.protocol.parse import reaction_emoji
from handlers.api.base import ApiError, Caller
from handlers.api.messages import ChatApiHandler

# A message id in a path, and a reaction (an emoji or a :shortcode:, percent-encoded).
MESSAGE_ID_PATTERN = r"[0-9]{1,18}"
EMOJI_PATTERN = r"[^/]{1,200}"


class _MessageChange(ChatApiHandler):
    """PATCH {text}: edit one's own message; DELETE: delete it (moderators: any in their
    rooms). `where` says which conversation the path names."""

    SUPPORTED_METHODS = ("PATCH", "DELETE")

    def where(self, raw: str) -> tuple[str | None, str | None]:
        raise NotImplementedError

    async def patch(self, raw: str, raw_id: str) -> None:
        caller = await self.authorized("write")
        room, peer = self.where(raw)
        text = self.required(self.json_body(), "text")
        changed = await self.act(self.actions.change(caller.account, room, peer, int(raw_id),
                                                     text=text))
        self.send_json({"message": events.edited(changed)})

    async def delete(self, raw: str, raw_id: str) -> None:
        caller = await self.authorized("write")
        room, peer = self.where(raw)
        await self.act(self.actions.change(caller.account, room, peer, int(raw_id),
                                           scopes=caller.scopes))
        self.set_status(204)
        self.finish()


class _Reaction(ChatApiHandler):
    """PUT: add one's reaction to a message one can read; DELETE: take it back."""

    SUPPORTED_METHODS = ("PUT", "DELETE")

    def where(self, raw: str) -> tuple[str | None, str | None]:
        raise NotImplementedError

    async def put(self, raw: str, raw_id: str, raw_emoji: str) -> None:
        await self._react(await self.authorized("write"), raw, raw_id, raw_emoji, add=True)

    async def delete(self, raw: str, raw_id: str, raw_emoji: str) -> None:
        await self._react(await self.authorized("write"), raw, raw_id, raw_emoji, add=False)

    async def _react(self, caller: Caller, raw: str, raw_id: str, raw_emoji: str, *,
                     add: bool) -> None:
        room, peer = self.where(raw)
        emoji = reaction_emoji(raw_emoji)
        if emoji is None:
            raise ApiError(400, "invalid_field", f"the reaction is {raw_emoji[:20]!r}: it must "
                           "be one emoji or a shortcode such as :thumbs_up:")
        changed = await self.act(self.actions.change(caller.account, room, peer, int(raw_id),
                                                     emoji=emoji, add=add))
        self.send_json({"message": events.reacted(changed)})


class RoomMessageHandler(_MessageChange):
    """A message of a room the caller is a member of."""

    ROUTE = "room_message"

    def where(self, raw: str) -> tuple[str | None, str | None]:
        return self.room(raw), None


class DirectMessageHandler(_MessageChange):
    """A message of the caller's direct conversation with a user."""

    ROUTE = "dm_message"

    def where(self, raw: str) -> tuple[str | None, str | None]:
        return None, self.person(raw)


class RoomReactionHandler(_Reaction):
    """A reaction on a message of a room the caller is a member of."""

    ROUTE = "room_reaction"

    def where(self, raw: str) -> tuple[str | None, str | None]:
        return self.room(raw), None


class DirectReactionHandler(_Reaction):
    """A reaction on a message of the caller's direct conversation with a user."""

    ROUTE = "dm_reaction"

    def where(self, raw: str) -> tuple[str | None, str | None]:
        return None, self.person(raw)
