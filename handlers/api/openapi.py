"""GET /api/v1/openapi.json: the API described in OpenAPI 3.1 (tests/test_api_openapi.py keeps
it in step with the route table and validates real answers against its schemas)."""

from __future__ import annotations

import json
from typing import Any

from handlers.api import openapi_chat
from handlers.api.base import ApiHandler
from handlers.api.openapi_parts import JSON, _body, _error, _ref

_NOT_SIGNED_IN = _error("no session (`not_signed_in`), or it ended or expired "
                        "(`invalid_session`; a stale cookie is cleared)")
_CROSS_ORIGIN = _error("`cross_origin`: a cookie request from another site (CSRF)")
_NOT_JSON = _error("`unsupported_media_type`: the body was not sent as application/json")
_BAD_REQUEST = _error("`bad_request`: not a JSON object, or a field missing or not a string "
                      "(the reason names it)")
_SECURED: list[dict[str, list[str]]] = [{"cookie": []}, {"bearer": []}]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["code", "reason"],
        "properties": {
            "code": {"type": "string", "description": "stable, for programs"},
            "reason": {"type": "string", "description": "for people"},
            "retry_after": {"type": "integer", "minimum": 0,
                            "description": "login_throttled: seconds to wait"},
        },
    },
    "File": {
        "type": "object", "required": ["id", "name", "size", "type", "url"],
        "properties": {
            "id": {"type": "string", "description": "24 random URL-safe characters"},
            "name": {"type": "string", "description": "for display only"},
            "size": {"type": "integer", "minimum": 0, "description": "bytes, as served"},
            "type": {"type": "string", "description": "sniffed from the bytes"},
            "url": {"type": "string", "description": "GET it (signed in) for the bytes"},
            "width": {"type": "integer", "description": "images: pixels"},
            "height": {"type": "integer", "description": "images: pixels"},
            "thumbnail": {"type": "string", "description": "images larger than a thumbnail"},
        },
    },
    "Account": {
        "type": "object", "required": ["id", "username", "role", "avatar", "created_ts"],
        "properties": {
            "id": {"type": "integer"},
            "username": {"type": "string"},
            "role": {"enum": ["admin", "member"]},
            "avatar": {"type": "string", "description": "a data: URL, or a Gravatar URL "
                                                        "with --avatars gravatar"},
            "created_ts": {"type": "integer", "description": "ms since the epoch"},
            "email": {"type": ["string", "null"], "description": "only your own account's"},
        },
    },
    "Session": {
        "type": "object",
        "required": ["id", "created_ts", "last_seen_ts", "address", "user_agent", "current"],
        "properties": {
            "id": {"type": "string", "description": "public: names the session, opens nothing"},
            "created_ts": {"type": "integer"},
            "last_seen_ts": {"type": "integer"},
            "address": {"type": "string", "description": "at sign-in (IPv6: its /64)"},
            "user_agent": {"type": "string"},
            "current": {"type": "boolean", "description": "the session this request used"},
        },
    },
    "Registration": {
        "type": "object", "required": ["username", "password"],
        "properties": {
            "username": {"type": "string"},
            "password": {"type": "string", "minLength": 8, "maxLength": 1024},
            "email": {"type": ["string", "null"]},
            "invite": {"type": ["string", "null"], "description": "--registration invite"},
        },
    },
    "Credentials": {
        "type": "object", "required": ["username", "password"],
        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
    },
    "ApplicationToken": {
        "type": "object", "required": ["jwt"],
        "properties": {"jwt": {
            "type": "string", "description": "a token the embedding application signed with "
            "the key of --jwt-key, with sub, name and exp (docs/api.md)"}},
    },
    "SignIn": {"oneOf": [_ref("Credentials"), _ref("ApplicationToken")]},
    "AccountAnswer": {
        "type": "object", "required": ["account"], "properties": {"account": _ref("Account")},
    },
    "SignedIn": {
        "type": "object", "required": ["token", "session", "account"],
        "properties": {
            "token": {"type": "string", "description": "shown once; the cookie's value too"},
            "session": _ref("Session"), "account": _ref("Account"),
        },
    },
    "Me": {
        "type": "object", "required": ["account", "session"],
        "properties": {"account": _ref("Account"), "session": _ref("Session")},
    },
    "AuditEntry": {
        "type": "object",
        "required": ["seq", "ts", "actor_id", "actor", "action", "room", "target",
                     "target_name", "details"],
        "properties": {
            "seq": {"type": "integer", "description": "increases with each entry"},
            "ts": {"type": "integer", "description": "ms since the epoch"},
            "actor_id": {"type": ["integer", "null"], "description": "the acting account"},
            "actor": {"type": "string", "description": "its name then"},
            "action": {"enum": ["create", "update", "invite", "kick", "ban", "unban", "mute",
                                "role", "remove"]},
            "room": {"type": "string"},
            "target": {"type": ["string", "null"],
                       "description": "whom: a:<account id> or g:<guest session>"},
            "target_name": {"type": ["string", "null"]},
            "details": {"type": "object",
                        "description": "minutes, role, topic, visibility, id (remove)"},
        },
    },
    "AuditLog": {
        "type": "object", "required": ["entries"],
        "properties": {"entries": {"type": "array", "items": _ref("AuditEntry")}},
    },
    "SessionList": {
        "type": "object", "required": ["sessions", "current"],
        "properties": {"sessions": {"type": "array", "items": _ref("Session")},
                       "current": {"type": "string"}},
    },
    # Passkeys (handlers/api/passkeys.py)
    "PasskeyBegin": {
        "type": "object", "required": ["purpose"],
        "properties": {
            "purpose": {"enum": ["add", "signup", "signin"], "description":
                        "add: another passkey for the signed-in account (needs a session); "
                        "signup: a new account with a passkey and no password; signin"},
            "username": {"type": ["string", "null"], "description":
                         "signup: required; signin: optional (only that account's passkeys "
                         "are allowed; without it any passkey of this site, discoverable)"},
            "email": {"type": ["string", "null"], "description": "signup"},
            "invite": {"type": ["string", "null"], "description": "signup, --registration "
                                                                  "invite"},
        },
    },
    "PasskeyOptions": {
        "type": "object", "required": ["options"],
        "properties": {"options": {"type": "object", "description":
                                   "PublicKeyCredentialCreationOptionsJSON (add, signup) or "
                                   "PublicKeyCredentialRequestOptionsJSON (signin), binary "
                                   "fields base64url, for navigator.credentials"}},
    },
    "PasskeyFinish": {
        "type": "object", "required": ["credential"],
        "properties": {
            "credential": {"type": "object", "description":
                           "the PublicKeyCredential the browser gave, as JSON (base64url: "
                           "what credential.toJSON() returns)"},
            "label": {"type": ["string", "null"], "maxLength": 64,
                      "description": "add, signup: a name to tell passkeys apart"},
        },
    },
    "Passkey": {
        "type": "object", "required": ["id", "label", "created_ts", "last_used_ts", "transports"],
        "properties": {
            "id": {"type": "string", "description": "the credential id, base64url (public)"},
            "label": {"type": "string"},
            "created_ts": {"type": "integer"},
            "last_used_ts": {"type": ["integer", "null"]},
            "transports": {"type": "array", "items": {"type": "string"}},
        },
    },
    "PasskeyAnswer": {
        "type": "object", "required": ["passkey"], "properties": {"passkey": _ref("Passkey")},
    },
    "PasskeyList": {
        "type": "object", "required": ["passkeys"],
        "properties": {"passkeys": {"type": "array", "items": _ref("Passkey")}},
    },
    # Webhooks (issue 17)
    "Webhook": {
        "type": "object", "required": ["id", "kind", "room", "name", "created_by",
                                       "created_ts"],
        "properties": {
            "id": {"type": "string", "description": "public: names it, opens nothing"},
            "kind": {"enum": ["incoming", "outgoing"]},
            "room": {"type": "string"},
            "name": {"type": "string", "description": "its messages' username (bot: true)"},
            "created_by": {"type": ["integer", "null"],
                           "description": "the account; null: the admin command"},
            "created_ts": {"type": "integer"},
            "url": {"type": "string", "description": "outgoing: the URL called"},
            "triggers": {"type": "array", "items": {"type": "string"},
                         "description": "outgoing: words that, first in a message, call it"},
        },
    },
    "WebhookList": {
        "type": "object", "required": ["webhooks"],
        "properties": {"webhooks": {"type": "array", "items": _ref("Webhook")}},
    },
    "WebhookCreate": {
        "type": "object", "required": ["room", "name"],
        "properties": {
            "room": {"type": "string"},
            "name": {"type": "string", "description": "1 to 32 characters, as a username"},
            "kind": {"enum": ["incoming", "outgoing"], "default": "incoming"},
            "url": {"type": "string", "description": "outgoing (required): http(s) URL"},
            "triggers": {"type": "array", "items": {"type": "string"}, "maxItems": 10,
                         "description": "outgoing: one word each; a mention of @name "
                                        "always calls it too"},
        },
    },
    "WebhookCreated": {
        "type": "object", "required": ["webhook"],
        "properties": {
            "webhook": _ref("Webhook"),
            "path": {"type": "string", "description": "incoming: /hooks/<secret>, shown "
                                                      "this once"},
            "url": {"type": "string", "description": "incoming: the path on this host"},
            "signing_key": {"type": "string", "description": "outgoing: the HMAC key of "
                                                             "X-Chat-Signature, shown once"},
        },
    },
    "SlackPayload": {
        "type": "object", "description": "Slack's incoming-webhook payload; other fields "
                                         "(channel, icon_emoji, ...) are ignored",
        "properties": {
            "text": {"type": "string", "description": "mrkdwn"},
            "username": {"type": "string", "description": "posted under this name instead "
                                                          "of the hook's (still bot: true)"},
            "icon_url": {"type": "string", "description": "ignored: avatars are drawn "
                                                          "here"},
            "attachments": {"type": "array", "items": {"type": "object"}},
            "blocks": {"type": "array", "items": {"type": "object"}},
        },
    },
    "HookPosted": {
        "type": "object", "required": ["ok", "message"],
        "properties": {
            "ok": {"const": True},
            "message": {"type": "object", "required": ["id", "room", "username", "text", "ts",
                                                       "bot"],
                        "properties": {"id": {"type": "integer"}, "room": {"type": "string"},
                                       "username": {"type": "string"},
                                       "text": {"type": "string"},
                                       "ts": {"type": "integer"}, "bot": {"const": True}}},
        },
    },
}

_SIGNED_IN_COOKIE = ("signed in; Set-Cookie: chat_session=<token> as POST /api/v1/sessions "
                     "sets it")
_CEREMONY = _error("`bad_request` (the reason says what), `invalid_challenge` (never begun, "
                   "used, expired, or begun for another purpose or account), `invalid_label`, "
                   "`passkey_rejected` (the attestation failed: wrong origin or RP ID, ...)")

_HOOK_FORBIDDEN = _error("`forbidden`: not an owner of the room nor a server admin; "
                         "`insufficient_scope`: an API token without the admin scope; "
                         "`cross_origin`")
# The webhooks' management takes a session or an admin-scope API token (handlers/api/webhooks.py).
_HOOK_401 = _error("`not_signed_in`, `invalid_session`; `invalid_token`: an API token "
                   "unknown, revoked, or of a disabled account")
_HOOK_429 = _error("`rate_limited`: more than --api-rate-limit requests per second with this "
                   "API token", **{"Retry-After": {"description": "seconds",
                                                   "schema": {"type": "integer"}}})
_NO_ROOM = _error("`no_such_room`: no such room, or a private one you are not in")
_STORE_FAILED = _error("`store_failed`: the database cannot be read or written now")

PATHS: dict[str, Any] = {
    "/api/v1/accounts": {"post": {
        "summary": "Create an account (as --registration allows)",
        "requestBody": {"required": True, **_body("Registration")},
        "responses": {
            "201": {"description": "created", **_body("AccountAnswer")},
            "400": _error("`bad_request`, `invalid_username`, `invalid_email`, "
                          "`password_too_short`, `password_too_long`, `weak_password`"),
            "403": _error("`registration_closed`, `invite_required`, `invalid_invite`, "
                          "`cross_origin`"),
            "409": _error("`name_taken` (also by a case or look-alike variant)"),
            "415": _NOT_JSON,
        },
    }},
    "/api/v1/sessions": {
        "post": {
            "summary": "Sign in (a name and password, or an embedding application's token): "
                       "sets the chat_session cookie and returns the token",
            "requestBody": {"required": True, **_body("SignIn")},
            "responses": {
                "200": {"description": "signed in; Set-Cookie: chat_session=<token>; "
                                       "HttpOnly; SameSite=Lax; Path=/; Max-Age (Secure "
                                       "over HTTPS)", **_body("SignedIn")},
                "400": _error("`bad_request` (the reason names the field); "
                              "`jwt_not_accepted`: a token, and the server runs without "
                              "--jwt-key; `invalid_username`...: a token's `name` this chat "
                              "does not allow"),
                "401": _error("`invalid_login`: the same for an unknown name and a wrong "
                              "password; `invalid_jwt`: a token the key does not verify "
                              "(another key or algorithm, `none`, expired, a claim missing)"),
                "403": _error("`account_disabled` (only after the right password, or a "
                              "valid token), `cross_origin`"),
                "409": _error("`name_taken`: a token's first sign-in names another "
                              "account's name"),
                "415": _NOT_JSON,
                "429": _error("`login_throttled`", **{"Retry-After": {
                    "description": "seconds", "schema": {"type": "integer"}}}),
            },
        },
        "get": {
            "summary": "Your sessions", "security": _SECURED,
            "responses": {"200": {"description": "every live session of your account",
                                  **_body("SessionList")},
                          "401": _NOT_SIGNED_IN},
        },
    },
    "/api/v1/sessions/current": {"delete": {
        "summary": "Sign out: ends this session and clears the cookie", "security": _SECURED,
        "responses": {"204": {"description": "ended"}, "401": _NOT_SIGNED_IN,
                      "403": _CROSS_ORIGIN},
    }},
    "/api/v1/sessions/{id}": {"delete": {
        "summary": "End one of your sessions (its sockets close, on every node)",
        "security": _SECURED,
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                        "example": "Xk3d9Qm2LzA7bP0w"}],
        "responses": {"204": {"description": "ended"}, "401": _NOT_SIGNED_IN,
                      "403": _CROSS_ORIGIN,
                      "404": _error("`no_such_session`: not one of yours (or unknown)")},
    }},
    "/api/v1/me": {"get": {
        "summary": "The signed-in account (with its email) and this session",
        "security": _SECURED,
        "responses": {"200": {"description": "you", **_body("Me")}, "401": _NOT_SIGNED_IN},
    }},
    "/api/v1/passkey-challenges": {"post": {
        "summary": "Begin a passkey ceremony: the options for navigator.credentials",
        "requestBody": {"required": True, **_body("PasskeyBegin")},
        "responses": {
            "200": {"description": "the challenge is stored for 5 minutes, single use",
                    **_body("PasskeyOptions")},
            "400": _error("`bad_request`, `invalid_username`, `invalid_email`, "
                          "`passkeys_unavailable` (the page was reached by an IP address "
                          "and no --rp-id is set)"),
            "401": _NOT_SIGNED_IN,
            "403": _error("`registration_closed`, `invite_required`, `cross_origin`"),
            "409": _error("`name_taken` (signup), `too_many_passkeys` (add)"),
            "415": _NOT_JSON,
            "429": _error("`too_many_ceremonies`: 20 begun and unfinished from this address"),
        },
    }},
    "/api/v1/passkeys": {
        "get": {
            "summary": "Your passkeys", "security": _SECURED,
            "responses": {"200": {"description": "oldest first", **_body("PasskeyList")},
                          "401": _NOT_SIGNED_IN},
        },
        "post": {
            "summary": "Finish adding a passkey to your account (purpose add)",
            "security": _SECURED,
            "requestBody": {"required": True, **_body("PasskeyFinish")},
            "responses": {
                "201": {"description": "added", **_body("PasskeyAnswer")},
                "400": _CEREMONY, "401": _NOT_SIGNED_IN, "403": _CROSS_ORIGIN,
                "409": _error("`passkey_taken`, `too_many_passkeys`"), "415": _NOT_JSON,
            },
        },
    },
    "/api/v1/passkeys/{id}": {"delete": {
        "summary": "Delete one of your passkeys", "security": _SECURED,
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,1400}$"},
                        "example": "3ViOSp0zkoRF0um7OSp-wliRJXQ"}],
        "responses": {"204": {"description": "deleted"}, "401": _NOT_SIGNED_IN,
                      "403": _CROSS_ORIGIN,
                      "404": _error("`no_such_passkey`: not one of yours (or unknown)"),
                      "409": _error("`last_sign_in`: the account has no password and no "
                                    "other passkey")},
    }},
    "/api/v1/passkey-accounts": {"post": {
        "summary": "Finish creating an account with a passkey and no password (purpose "
                   "signup); signed in at once",
        "requestBody": {"required": True, **_body("PasskeyFinish")},
        "responses": {
            "201": {"description": _SIGNED_IN_COOKIE, **_body("SignedIn")},
            "400": _CEREMONY,
            "403": _error("`registration_closed`, `invalid_invite`, `cross_origin`"),
            "409": _error("`name_taken` (taken since the begin), `passkey_taken`"),
            "415": _NOT_JSON,
        },
    }},
    "/api/v1/passkey-sessions": {"post": {
        "summary": "Finish signing in with a passkey (purpose signin): the cookie and token",
        "requestBody": {"required": True, **_body("PasskeyFinish")},
        "responses": {
            "200": {"description": _SIGNED_IN_COOKIE, **_body("SignedIn")},
            "400": _error("`bad_request`, `invalid_challenge`"),
            "401": _error("`invalid_passkey`: unknown, another account's, a bad signature, "
                          "origin or RP ID, or a sign count not above the last"),
            "403": _error("`account_disabled` (only to who holds the passkey), "
                          "`cross_origin`"),
            "415": _NOT_JSON,
            "429": _error("`login_throttled`: failed sign-ins, passkeys and passwords alike",
                          **{"Retry-After": {"description": "seconds",
                                             "schema": {"type": "integer"}}}),
        },
    }},
    "/api/v1/audit": {"get": {
        "summary": "The rooms' moderation audit log, newest first (server admins only; an "
                   "API token needs the admin scope)",
        "security": _SECURED,
        "parameters": [
            {"name": "room", "in": "query", "required": False, "example": "general",
             "schema": {"type": "string"}, "description": "only this room's entries"},
            {"name": "limit", "in": "query", "required": False, "example": "100",
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        ],
        "responses": {"200": {"description": "the entries", **_body("AuditLog")},
                      "400": _error("`invalid_room` or `invalid_field` (limit)"),
                      "401": _NOT_SIGNED_IN,
                      "403": _error("`forbidden`: not a server admin; "
                                    "`insufficient_scope`: an API token without the admin "
                                    "scope"),
                      "429": _error("`rate_limited`: an API token over --api-rate-limit",
                                    **{"Retry-After": {"description": "seconds",
                                                       "schema": {"type": "integer"}}}),
                      "503": _error("`store_failed`: the database cannot be read now")},
    }},
    # Webhooks (issue 17; handlers/api/webhooks.py, handlers/hooks.py)
    "/api/v1/webhooks": {
        "get": {
            "summary": "A room's live webhooks (its owners and server admins only)",
            "security": _SECURED,
            "parameters": [{"name": "room", "in": "query", "required": True, "example": "ops",
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "oldest first; never a secret or a key",
                                  **_body("WebhookList")},
                          "400": _error("`bad_request` (no room), `invalid_room`"),
                          "401": _HOOK_401, "403": _HOOK_FORBIDDEN, "404": _NO_ROOM,
                          "429": _HOOK_429, "503": _STORE_FAILED},
        },
        "post": {
            "summary": "Create a webhook of a room (its owners and server admins only); its "
                       "secret URL or signing key is in this answer only",
            "security": _SECURED,
            "requestBody": {"required": True, **_body("WebhookCreate")},
            "responses": {
                "201": {"description": "created", **_body("WebhookCreated")},
                "400": _error("`bad_request`, `invalid_room`, `invalid_name`, `invalid_url`, "
                              "`invalid_triggers`"),
                "401": _HOOK_401,
                "403": _HOOK_FORBIDDEN,
                "404": _NO_ROOM,
                "409": _error("`too_many_webhooks`: the room has 50 live ones"),
                "415": _NOT_JSON, "429": _HOOK_429, "503": _STORE_FAILED,
            },
        },
    },
    "/api/v1/webhooks/{id}": {"delete": {
        "summary": "Revoke a webhook at once: its URL answers 404, its calls stop",
        "security": _SECURED,
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{1,64}$"},
                        "example": "3f9a0c1d2e4b5a69"}],
        "responses": {"204": {"description": "revoked"}, "401": _HOOK_401,
                      "403": _HOOK_FORBIDDEN,
                      "404": _error("`no_such_webhook`: unknown, revoked, or of a private "
                                    "room you are not in"),
                      "429": _HOOK_429, "503": _STORE_FAILED},
    }},
    "/hooks/{secret}": {"post": {
        "summary": "An incoming webhook: post Slack's incoming-webhook payload into the room "
                   "(JSON, or form-encoded with the JSON in `payload`)",
        "parameters": [{"name": "secret", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"},
                        "example": "Ugmwe4FdqTAojWfM-c_YCzrCBRzPped_q7ru3Yrjz8Q",
                        "description": "the secret, shown once when the hook was made"}],
        "requestBody": {"required": True, "content": {
            JSON: {"schema": _ref("SlackPayload")},
            "application/x-www-form-urlencoded": {"schema": {
                "type": "object", "required": ["payload"],
                "properties": {"payload": {"type": "string",
                                           "description": "a SlackPayload as JSON"}}}}}},
        "responses": {
            "200": {"description": "posted", **_body("HookPosted")},
            "400": _error("`invalid_payload` (not JSON, not an object, no text), `too_long` "
                          "(--webhook-max-text-chars), `invalid_text`, `invalid_name` (the "
                          "`username`)"),
            "404": _error("`no_such_webhook`: no live hook has this secret"),
            "413": _error("`too_large`: the body is over --webhook-max-body-bytes"),
            "429": _error("`rate_limited`: over --webhook-rate / --webhook-burst",
                          **{"Retry-After": {"description": "seconds",
                                             "schema": {"type": "integer"}}}),
            "503": _error("`store_failed`, `broker_down`: nothing was posted; try again"),
        },
    }},
    # Files (issue 18: handlers/api/files.py, docs/files.md)
    "/api/v1/uploads": {"post": {
        "summary": "Upload one file: the body is its bytes (streamed to disk; any "
                   "Content-Type, which is ignored: the type is sniffed from the bytes); "
                   "attach it to a message with the frame's `files`",
        "security": _SECURED,
        "parameters": [
            {"name": "name", "in": "query", "required": False, "example": "report.pdf",
             "schema": {"type": "string"},
             "description": "the file's name, only shown (cleaned: no path, no control or "
                            "bidi characters, at most 200 characters)"},
        ],
        "requestBody": {"required": True, "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}},
        "responses": {"201": {"description": "stored", **_body("File")},
                      "401": _NOT_SIGNED_IN,
                      "403": _CROSS_ORIGIN,
                      "413": _error("`file_too_large` (past --max-upload-bytes: answered as "
                                    "soon as the body passes it, the rest unread) or "
                                    "`quota_exceeded` (past --upload-quota-bytes)"),
                      "503": _error("`store_failed`: the file cannot be stored now")},
    }},
    "/api/v1/files/{file_id}": {"get": {
        "summary": "A file's bytes, to its uploader and to whoever may read a conversation a "
                   "message carrying it was posted in (Content-Disposition: inline for PNG, "
                   "JPEG, GIF and WebP, attachment for anything else; nosniff; "
                   "Content-Security-Policy: sandbox)",
        "security": _SECURED,
        "parameters": [{"name": "file_id", "in": "path", "required": True,
                        "example": "AAAAAAAAAAAAAAAAAAAAAAAA",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"}}],
        "responses": {"200": {"description": "the bytes (as stored: images re-encoded "
                                             "without their metadata)",
                              "content": {"application/octet-stream": {
                                  "schema": {"type": "string", "format": "binary"}}}},
                      "401": _NOT_SIGNED_IN,
                      "404": _error("`no_such_file`: unknown, or not shared with you (the "
                                    "same answer)"),
                      "503": _error("`store_failed`: the database cannot be read now")},
    }},
    "/api/v1/files/{file_id}/thumbnail": {"get": {
        "summary": "An image's thumbnail (at most 320 pixels a side; JPEG, or PNG with "
                   "transparency), to the same readers as the file",
        "security": _SECURED,
        "parameters": [{"name": "file_id", "in": "path", "required": True,
                        "example": "AAAAAAAAAAAAAAAAAAAAAAAA",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"}}],
        "responses": {"200": {"description": "the thumbnail",
                              "content": {"image/jpeg": {"schema": {"type": "string",
                                                                    "format": "binary"}}}},
                      "401": _NOT_SIGNED_IN,
                      "404": _error("`no_such_file`, or the file has no thumbnail"),
                      "503": _error("`store_failed`: the database cannot be read now")},
    }},
    "/api/v1/openapi.json": {"get": {
        "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1",
                              "content": {JSON: {"schema": {"type": "object"}}}}},
    }},
}

# Tokens, bots and the messages routes (issue 17)
SCHEMAS.update(openapi_chat.SCHEMAS)
PATHS.update(openapi_chat.PATHS)

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Simple Chat HTTP API", "version": "1",
             "description": "See docs/api.md. Errors are {code, reason}; a cookie request "
                            "that changes something must come from the page's own origin. "
                            "Programs use API tokens: Authorization: Bearer chat_pat_..."},
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "cookie": {"type": "apiKey", "in": "cookie", "name": "chat_session"},
            "bearer": {"type": "http", "scheme": "bearer"},
        },
    },
}
_ENCODED = json.dumps(OPENAPI, ensure_ascii=False)


class OpenApiHandler(ApiHandler):
    """The document above."""

    SUPPORTED_METHODS = ("GET",)

    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")  # no secret in it; asks again after upgrades
        self.finish(_ENCODED)
