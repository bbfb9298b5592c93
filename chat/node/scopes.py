"""What an API token's connection may send: a read-only token reads, a write token also acts.

A socket opened with `Authorization: Bearer chat_pat_...` (chat/node/signins.py) carries its
token's scopes in its Auth. `read` receives and asks (join a room the account is already a
member of, history, members, status, the rooms' directory, changes, search, read marks);
`write` also changes what others see (messages, direct messages, typing, leave, edits,
deletes, reactions, room settings and moderation), as the HTTP API's scopes divide its routes
(docs/api.md). A session's connection (scopes None) may do whatever its account may.
"""

from __future__ import annotations

from chat.people.connections import Auth
from chat.protocol.parse import (
    Change,
    Command,
    Direct,
    Leave,
    LegacyPost,
    Moderate,
    Post,
    ProtocolError,
    React,
    Remove,
    RoomSet,
    Typing,
    peek,
)

# The frames that need the `write` scope: each changes what other people see or hold.
WRITE_COMMANDS = (Post, Direct, Typing, Leave, LegacyPost, RoomSet, Moderate, Remove, Change,
                  React)


def check_scope(auth: Auth, command: Command, text: str) -> None:
    """ProtocolError insufficient_scope if the connection's token may not send `command`."""
    if isinstance(command, WRITE_COMMANDS) and not auth.may("write"):
        request, cid = peek(text)
        raise ProtocolError(
            "insufficient_scope", f"this connection's API token has the scopes "
            f"{', '.join(auth.scopes or ())}; a {request or 'frame'} needs a token with the "
            "write scope", request=request, cid=cid, scope="write")

