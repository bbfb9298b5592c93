"""The names online: who may take a name, and when it is free again."""

from __future__ import annotations

from chat.identity import avatar_url, new_token, token_matches
from chat.protocol import ProtocolError
from chat.state import Client, User


class Directory(dict[str, User]):
    """Users online by case-folded name; a name is held while it has a connection."""

    def claim(
        self, client: Client, username: str | None, email: str | None, token: str | None,
        request: str | None,
    ) -> User:
        """The connection's user: its own, a new one, or (with its token) an online one."""
        if client.user is not None:
            if username is not None and username.casefold() != client.user.key:
                raise ProtocolError(
                    "username_mismatch",
                    f"this connection is {client.user.name!r}; it cannot speak as {username!r}",
                    request=request, field="username",
                )
            return client.user
        if username is None:
            raise ProtocolError("missing_field", "the field 'username' is required",
                                request=request, field="username")
        user = self.get(username.casefold())
        if user is None:
            user = User(username, avatar_url(email, username), new_token())
            self[user.key] = user
        elif not token_matches(token, user.token):
            raise ProtocolError("username_taken", f"{username!r} is already online",
                                request=request, field="username")
        user.clients.add(client)
        client.user = user
        return user

    def release(self, client: Client) -> None:
        """Forget a closed connection; the name is free once its user has none left."""
        user = client.user
        if user is None:
            return
        user.clients.discard(client)
        if not user.clients and self.get(user.key) is user:
            del self[user.key]
