"""The OpenAPI description of the tokens, bots and messages routes (handlers/api/tokens.py,
messages.py, changes.py), merged into handlers/api/openapi.py's document."""

from __future__ import annotations

from typing import Any

from handlers.api.openapi_parts import _body, _error, _ref

_RETRY_AFTER = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
# A route that takes an API token (with a scope) or a session.
_BY_TOKEN: list[dict[str, list[str]]] = [{"cookie": []}, {"bearer": []}]
_TOKEN_401 = _error("`not_signed_in`, `invalid_session`; `invalid_token`: an API token "
                    "unknown, revoked, or of a disabled account")
_TOKEN_429 = _error("`rate_limited`: more than --api-rate-limit requests per second with "
                    "this token", **_RETRY_AFTER)
_SESSION_ONLY_403 = _error("`token_not_accepted`: an API token (this route takes a session), "
                           "`cross_origin`")
_ADMIN_403 = _error("`forbidden`: not a server admin; `insufficient_scope`: a token without "
                    "the admin scope; `cross_origin`")
_NOT_JSON = _error("`unsupported_media_type`: the body was not sent as application/json")
_UNAVAILABLE = _error("`store_failed`, `broker_down`: try again shortly")


def _scoped(scope: str, more: str = "") -> dict[str, Any]:
    return _error(f"`insufficient_scope`: a token without the {scope} scope{more}")


def _path(name: str, example: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "example": example,
            "description": description, "schema": {"type": "string"}}


def _query(name: str, example: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "example": example,
            "schema": schema, "description": description}


_ROOM = _path("room", "ops", "a room name (a-z, 0-9, - _ .)")
_PEER = _path("username", "ann", "the other person's name")
_PAGE = [_query("before", "1000", {"type": "integer", "minimum": 1},
                "only messages with a smaller id (the next older page)"),
         _query("limit", "50", {"type": "integer", "minimum": 1, "maximum": 200,
                                "default": 50}, "messages at most")]
_LIST = [_query("after", "", {"type": "string"}, "only names after this one (the next page)"),
         _query("limit", "100", {"type": "integer", "minimum": 1, "maximum": 200,
                                 "default": 100}, "entries at most")]
_ID = {"name": "id", "in": "path", "required": True, "example": "42",
       "description": "the message's id", "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}}
_EMOJI = _path("emoji", "👍", "one emoji, or a shortcode such as :thumbs_up: (percent-encoded)")
_CHANGE_ERRORS = {
    "400": _error("`invalid_room`, `invalid_username`, `invalid_field` (the reaction), "
                  "`invalid_text`, `empty_text`, `too_long`"),
    "401": _TOKEN_401,
    "403": _error("`insufficient_scope`: a token without the write scope; `forbidden`: not "
                  "your message (or, to delete, not a moderator of the room, nor an admin by "
                  "a session or an admin-scope token); `not_in_room`, "
                  "`banned`, `muted`, `edit_window_passed`, `cross_origin`"),
    "404": _error("`no_such_room`, `no_such_message` (never had, deleted, or another pair's)"),
    "409": _error("`too_many_reactions`: --max-reactions distinct ones already"),
    "429": _TOKEN_429, "503": _UNAVAILABLE,
}
_SCOPES = {"type": "array", "minItems": 1, "items": {"enum": ["read", "write", "admin"]}}

SCHEMAS: dict[str, Any] = {
    "ApiToken": {
        "type": "object",
        "required": ["id", "account_id", "name", "scopes", "created_ts", "last_used_ts"],
        "properties": {
            "id": {"type": "string", "description": "public: names the token, opens nothing"},
            "account_id": {"type": "integer"},
            "name": {"type": "string"},
            "scopes": _SCOPES,
            "created_ts": {"type": "integer"},
            "last_used_ts": {"type": ["integer", "null"], "description": "to the minute"},
            "username": {"type": "string", "description": "the account's (admin list)"},
        },
    },
    "NewToken": {
        "type": "object", "required": ["name", "scopes"],
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64},
                       "scopes": _SCOPES},
    },
    "IssuedToken": {
        "type": "object", "required": ["token", "api_token"],
        "properties": {"token": {"type": "string", "pattern": "^chat_pat_",
                                 "description": "the secret: shown once, here"},
                       "api_token": _ref("ApiToken")},
    },
    "TokenList": {
        "type": "object", "required": ["tokens"],
        "properties": {"tokens": {"type": "array", "items": _ref("ApiToken")}},
    },
    "NewBot": {
        "type": "object", "required": ["username"],
        "properties": {"username": {"type": "string"}},
    },
    "BotAnswer": {
        "type": "object", "required": ["account"],
        "properties": {"account": {"allOf": [_ref("Account"), {
            "type": "object", "required": ["bot"], "properties": {"bot": {"const": True}}}]}},
    },
    "BotList": {
        "type": "object", "required": ["bots"],
        "properties": {"bots": {"type": "array", "items": {"allOf": [_ref("Account"), {
            "type": "object", "required": ["bot", "disabled"],
            "properties": {"bot": {"const": True}, "disabled": {
                "type": "boolean", "description": "revoked (DELETE /api/v1/bots/{username})"}},
        }]}}},
    },
    "Room": {
        "type": "object", "required": ["name", "topic", "visibility", "role", "members"],
        "properties": {"name": {"type": "string"}, "topic": {"type": "string"},
                       "visibility": {"enum": ["public", "private"]},
                       "role": {"enum": ["owner", "moderator", "member", None],
                                "description": "yours; null: not a member"},
                       "members": {"type": "integer"}},
    },
    "RoomList": {
        "type": "object", "required": ["rooms", "more"],
        "properties": {"rooms": {"type": "array", "items": _ref("Room")},
                       "more": {"type": "boolean"}},
    },
    "Member": {
        "type": "object", "required": ["username", "role"],
        "properties": {"username": {"type": "string"},
                       "role": {"enum": ["owner", "moderator", "member"]},
                       "bot": {"const": True, "description": "only for a bot"}},
    },
    "MemberList": {
        "type": "object", "required": ["room", "members", "more"],
        "properties": {"room": {"type": "string"},
                       "members": {"type": "array", "items": _ref("Member")},
                       "more": {"type": "boolean"}},
    },
    "Joined": {
        "type": "object", "required": ["room"],
        "properties": {"room": {"type": "object", "description": "name, topic, visibility "
                                "and your role, as the socket's welcome gives them"}},
    },
    "Message": {
        "type": "object", "required": ["type", "id", "avatar", "message", "ts"],
        "description": "the socket's `message` (room) or `dm` event (docs/protocol.md)",
        "properties": {"type": {"enum": ["message", "dm"]}, "id": {"type": "integer"},
                       "room": {"type": "string"}, "username": {"type": "string"},
                       "from": {"type": "string"}, "to": {"type": "string"},
                       "avatar": {"type": "string"}, "message": {"type": "string"},
                       "ts": {"type": "integer"}, "cid": {"type": "string"},
                       "guest": {"const": True}},
    },
    "MessageAnswer": {
        "type": "object", "required": ["message"], "properties": {"message": _ref("Message")},
    },
    "Post": {
        "type": "object", "required": ["text"],
        "properties": {"text": {"type": "string"},
                       "cid": {"type": ["string", "null"], "maxLength": 64, "description":
                               "the client's id: sent again, the same message comes back "
                               "(200) and none is added"}},
    },
    "Edit": {
        "type": "object", "required": ["text"],
        "properties": {"text": {"type": "string", "description": "the message's new text"}},
    },
    "ChangeAnswer": {
        "type": "object", "required": ["message"],
        "properties": {"message": {
            "type": "object", "required": ["type", "id", "change"],
            "description": "the socket's `edited` or `reacted` event (docs/protocol.md)",
            "properties": {"type": {"enum": ["edited", "reacted"]}, "id": {"type": "integer"},
                           "room": {"type": "string"}, "from": {"type": "string"},
                           "to": {"type": "string"}, "message": {"type": "string"},
                           "edited": {"type": "integer"}, "change": {"type": "integer"},
                           "reactions": {"type": "array", "items": {"type": "object"}}}}},
    },
    "MessagePage": {
        "type": "object", "required": ["messages", "more"],
        "properties": {"messages": {"type": "array", "items": _ref("Message")},
                       "more": {"type": "boolean", "description": "older ones exist"}},
    },
}

_POSTED = {"201": {"description": "stored and sent to every socket of the conversation",
                   **_body("MessageAnswer")},
           "200": {"description": "a cid sent before: the original message, nothing added",
                   **_body("MessageAnswer")}}
_POST_ERRORS = {"400": _error("`bad_request`, `invalid_text`, `empty_text`, `too_long`, "
                              "`invalid_field` (cid)"),
                "401": _TOKEN_401, "409": _error("`cid_reused`: the cid was another "
                                                 "conversation's"),
                "415": _NOT_JSON, "429": _TOKEN_429, "503": _UNAVAILABLE}

PATHS: dict[str, Any] = {
    "/api/v1/tokens": {
        "get": {"summary": "Your API tokens (never their secrets); with a session",
                "security": _BY_TOKEN,
                "responses": {"200": {"description": "oldest first", **_body("TokenList")},
                              "401": _TOKEN_401, "403": _SESSION_ONLY_403}},
        "post": {"summary": "A new API token; its secret is shown once; with a session",
                 "security": _BY_TOKEN, "requestBody": {"required": True, **_body("NewToken")},
                 "responses": {"201": {"description": "made", **_body("IssuedToken")},
                               "400": _error("`bad_request`, `invalid_field` (name, scopes)"),
                               "401": _TOKEN_401,
                               "403": _error("`forbidden`: the admin scope, and you are no "
                                             "admin; `token_not_accepted`, `cross_origin`"),
                               "409": _error("`too_many_tokens`"), "415": _NOT_JSON}},
    },
    "/api/v1/tokens/{id}": {"delete": {
        "summary": "Revoke one of your tokens: it stops working at once, on every node",
        "security": _BY_TOKEN,
        "parameters": [_path("id", "dG9rZW4taWQx", "the token's id")],
        "responses": {"204": {"description": "revoked"}, "401": _TOKEN_401,
                      "403": _SESSION_ONLY_403,
                      "404": _error("`no_such_token`: not one of yours (or unknown)")},
    }},
    "/api/v1/admin/tokens": {"get": {
        "summary": "Every API token, with its account's name (admins)", "security": _BY_TOKEN,
        "responses": {"200": {"description": "oldest first", **_body("TokenList")},
                      "401": _TOKEN_401, "403": _ADMIN_403, "429": _TOKEN_429},
    }},
    "/api/v1/admin/tokens/{id}": {"delete": {
        "summary": "Revoke anyone's API token (admins)", "security": _BY_TOKEN,
        "parameters": [_path("id", "dG9rZW4taWQx", "the token's id")],
        "responses": {"204": {"description": "revoked"}, "401": _TOKEN_401,
                      "403": _ADMIN_403, "404": _error("`no_such_token`"),
                      "429": _TOKEN_429},
    }},
    "/api/v1/bots": {
        "get": {"summary": "The bot accounts (admins)", "security": _BY_TOKEN,
                "responses": {"200": {"description": "oldest first", **_body("BotList")},
                              "401": _TOKEN_401, "403": _ADMIN_403, "429": _TOKEN_429}},
        "post": {"summary": "A new bot account: no password, no passkey; it acts by tokens "
                            "(admins)", "security": _BY_TOKEN,
                 "requestBody": {"required": True, **_body("NewBot")},
                 "responses": {"201": {"description": "made", **_body("BotAnswer")},
                               "400": _error("`bad_request`, `invalid_username`"),
                               "401": _TOKEN_401, "403": _ADMIN_403,
                               "409": _error("`name_taken`"), "415": _NOT_JSON,
                               "429": _TOKEN_429}},
    },
    "/api/v1/bots/{username}": {"delete": {
        "summary": "Revoke a bot (admins): its account is disabled, its tokens refused and its "
                   "sockets closed (4003) at once, on every node", "security": _BY_TOKEN,
        "parameters": [_path("username", "deploy-bot", "the bot's name")],
        "responses": {"204": {"description": "revoked"}, "401": _TOKEN_401,
                      "403": _ADMIN_403, "404": _error("`no_such_bot`: no bot has this name"),
                      "429": _TOKEN_429},
    }},
    "/api/v1/bots/{username}/tokens": {"post": {
        "summary": "A new API token of a bot; its secret is shown once (admins)",
        "security": _BY_TOKEN,
        "parameters": [_path("username", "deploy-bot", "the bot's name")],
        "requestBody": {"required": True, **_body("NewToken")},
        "responses": {"201": {"description": "made", **_body("IssuedToken")},
                      "400": _error("`bad_request`, `invalid_field` (name, scopes)"),
                      "401": _TOKEN_401, "403": _ADMIN_403,
                      "404": _error("`no_such_bot`"), "409": _error("`too_many_tokens`"),
                      "415": _NOT_JSON, "429": _TOKEN_429},
    }},
    "/api/v1/rooms": {"get": {
        "summary": "The rooms you may see: public ones, and private ones you are in (scope "
                   "read)", "security": _BY_TOKEN, "parameters": _LIST,
        "responses": {"200": {"description": "by name", **_body("RoomList")},
                      "400": _error("`invalid_field` (limit)"), "401": _TOKEN_401,
                      "403": _scoped("read"), "429": _TOKEN_429, "503": _UNAVAILABLE},
    }},
    "/api/v1/rooms/{room}/members": {"get": {
        "summary": "The members of a room you are in, by name (scope read)",
        "security": _BY_TOKEN, "parameters": [_ROOM, *_LIST],
        "responses": {"200": {"description": "accounts' memberships", **_body("MemberList")},
                      "400": _error("`invalid_room`, `invalid_field` (limit)"),
                      "401": _TOKEN_401,
                      "403": _scoped("read", "; `not_in_room`, `banned`"),
                      "404": _error("`no_such_room` (also a private room you are not in)"),
                      "429": _TOKEN_429, "503": _UNAVAILABLE},
    }},
    "/api/v1/rooms/{room}/membership": {
        "put": {"summary": "Join a room (scope write): as the socket's join, for good",
                "security": _BY_TOKEN, "parameters": [_ROOM],
                "responses": {"200": {"description": "a member", **_body("Joined")},
                              "400": _error("`invalid_room`"), "401": _TOKEN_401,
                              "403": _scoped("write", "; `banned`, `cross_origin`"),
                              "404": _error("`no_such_room` (also a private room you are "
                                            "not in)"),
                              "429": _TOKEN_429, "503": _UNAVAILABLE}},
        "delete": {"summary": "Leave a room (scope write); your sockets leave it too",
                   "security": _BY_TOKEN, "parameters": [_ROOM],
                   "responses": {"204": {"description": "left"},
                                 "400": _error("`invalid_room`"), "401": _TOKEN_401,
                                 "403": _scoped("write", "; `not_in_room`, `banned`, "
                                                "`cross_origin`"),
                                 "404": _error("`no_such_room`"), "429": _TOKEN_429,
                                 "503": _UNAVAILABLE}},
    },
    "/api/v1/rooms/{room}/messages": {
        "get": {"summary": "A page of a room's history, oldest first (scope read; a member)",
                "security": _BY_TOKEN, "parameters": [_ROOM, *_PAGE],
                "responses": {"200": {"description": "as the socket's history page",
                                      **_body("MessagePage")},
                              "400": _error("`invalid_room`, `invalid_field`"),
                              "401": _TOKEN_401,
                              "403": _scoped("read", "; `not_in_room`, `banned`"),
                              "404": _error("`no_such_room`"), "429": _TOKEN_429,
                              "503": _UNAVAILABLE}},
        "post": {"summary": "Send a message to a room you are in (scope write)",
                 "security": _BY_TOKEN, "parameters": [_ROOM],
                 "requestBody": {"required": True, **_body("Post")},
                 "responses": {**_POSTED, **_POST_ERRORS,
                               "403": _scoped("write", "; `not_in_room`, `banned`, `muted`, "
                                              "`cross_origin`"),
                               "404": _error("`no_such_room`")}},
    },
    "/api/v1/dms/{username}/messages": {
        "get": {"summary": "A page of your direct conversation with a person (scope read)",
                "security": _BY_TOKEN, "parameters": [_PEER, *_PAGE],
                "responses": {"200": {"description": "as the socket's history page",
                                      **_body("MessagePage")},
                              "400": _error("`invalid_username`, `invalid_field`"),
                              "401": _TOKEN_401, "403": _scoped("read"),
                              "429": _TOKEN_429, "503": _UNAVAILABLE}},
        "post": {"summary": "Send a direct message (scope write)", "security": _BY_TOKEN,
                 "parameters": [_PEER], "requestBody": {"required": True, **_body("Post")},
                 "responses": {**_POSTED, **_POST_ERRORS,
                               "403": _scoped("write", "; `cross_origin`"),
                               "404": _error("`not_online`: no account, and no guest online, "
                                             "has this name")}},
    },
    # Edits, deletes and reactions (handlers/api/changes.py)
    "/api/v1/rooms/{room}/messages/{id}": {
        "patch": {"summary": "Edit your message of a room (scope write; within --edit-window)",
                  "security": _BY_TOKEN, "parameters": [_ROOM, _ID],
                  "requestBody": {"required": True, **_body("Edit")},
                  "responses": {"200": {"description": "edited: every reader is told",
                                        **_body("ChangeAnswer")},
                                **_CHANGE_ERRORS}},
        "delete": {"summary": "Delete your message of a room (owners, moderators and admins: "
                              "any; scope write; an admin's token needs the admin scope too "
                              "for another's message where it is no moderator): its text "
                              "leaves the store",
                   "security": _BY_TOKEN, "parameters": [_ROOM, _ID],
                   "responses": {"204": {"description": "deleted: every reader is told"},
                                 **_CHANGE_ERRORS}},
    },
    "/api/v1/dms/{username}/messages/{id}": {
        "patch": {"summary": "Edit your message of a direct conversation (scope write)",
                  "security": _BY_TOKEN, "parameters": [_PEER, _ID],
                  "requestBody": {"required": True, **_body("Edit")},
                  "responses": {"200": {"description": "edited: both parties are told",
                                        **_body("ChangeAnswer")},
                                **_CHANGE_ERRORS}},
        "delete": {"summary": "Delete your message of a direct conversation (scope write)",
                   "security": _BY_TOKEN, "parameters": [_PEER, _ID],
                   "responses": {"204": {"description": "deleted: both parties are told"},
                                 **_CHANGE_ERRORS}},
    },
    "/api/v1/rooms/{room}/messages/{id}/reactions/{emoji}": {
        "put": {"summary": "Add your reaction to a message of a room you are in (scope write)",
                "security": _BY_TOKEN, "parameters": [_ROOM, _ID, _EMOJI],
                "responses": {"200": {"description": "the message's reactions now",
                                      **_body("ChangeAnswer")}, **_CHANGE_ERRORS}},
        "delete": {"summary": "Take back your reaction (scope write)",
                   "security": _BY_TOKEN, "parameters": [_ROOM, _ID, _EMOJI],
                   "responses": {"200": {"description": "the message's reactions now",
                                         **_body("ChangeAnswer")}, **_CHANGE_ERRORS}},
    },
    "/api/v1/dms/{username}/messages/{id}/reactions/{emoji}": {
        "put": {"summary": "Add your reaction to a message of a direct conversation",
                "security": _BY_TOKEN, "parameters": [_PEER, _ID, _EMOJI],
                "responses": {"200": {"description": "the message's reactions now",
                                      **_body("ChangeAnswer")}, **_CHANGE_ERRORS}},
        "delete": {"summary": "Take back your reaction (scope write)",
                   "security": _BY_TOKEN, "parameters": [_PEER, _ID, _EMOJI],
                   "responses": {"200": {"description": "the message's reactions now",
                                         **_body("ChangeAnswer")}, **_CHANGE_ERRORS}},
    },
}
