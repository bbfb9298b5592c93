"""POST /hooks/<secret>: an incoming webhook, Slack's format (chat/hooks/slack.py).

The secret in the path is the only credential (no cookie is read, so no CSRF check). The body
is JSON, or a form with the JSON in its `payload` field, as Slack accepts; it may be larger than
the API's (--webhook-max-body-bytes), so it is streamed in against that limit.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from tornado.http1connection import HTTP1Connection
from tornado.web import HTTPError, RequestHandler, stream_request_body

from chat.config import Settings
from chat.hooks.service import HookError, Webhooks

SECRET_PATTERN = r"[A-Za-z0-9_-]{1,100}"
FORM_TYPE = "application/x-www-form-urlencoded"


class Refused(HTTPError):
    """A HookError raised where Tornado's flow needs an HTTPError (no traceback logged)."""

    def __init__(self, error: HookError) -> None:
        super().__init__(error.status)
        self.error = error


@stream_request_body
class IncomingHookHandler(RequestHandler):
    """Posts the payload into the hook's room; 404 for a secret no live hook has."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, hooks: Webhooks, settings: Settings) -> None:
        self.hooks = hooks
        self.limit = settings.webhook_max_body_bytes
        self.chunks: list[bytes] = []
        self.size = 0

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def prepare(self) -> None:
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.limit:
            self._too_large(int(length))
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):  # always, served by Tornado's HTTPServer
            connection.set_max_body_size(self.limit)

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:  # chunked, without a Content-Length
            self._too_large(self.size)
        self.chunks.append(chunk)

    def _too_large(self, size: int) -> None:
        raise Refused(HookError(413, "too_large", f"the body is {size:,} bytes; the limit "
                                f"is {self.limit:,} (--webhook-max-body-bytes)"))

    def _request_summary(self) -> str:
        """The access log's text, without the secret (it is the hook's only credential)."""
        return f"{self.request.method} /hooks/*** ({self.request.remote_ip})"

    async def post(self, secret: str) -> None:
        # Answered as JSON with `"ok": true`: Alertmanager's and Grafana's Slack senders take
        # that (or a text/html body of exactly "ok") as success, anything else as a failure.
        try:
            posted = await self.hooks.receive(secret, self._payload(b"".join(self.chunks)))
        except HookError as exc:
            self._refuse(exc)
            return
        self.finish(json.dumps({"ok": True, "message": posted}, ensure_ascii=False))

    def _payload(self, body: bytes) -> Any:
        kind = self.request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        try:
            if kind == FORM_TYPE:
                fields = parse_qs(body.decode("utf-8"), max_num_fields=100)
                if "payload" not in fields:
                    raise HookError(400, "invalid_payload", "a form body must carry the JSON "
                                    "in its `payload` field")
                return json.loads(fields["payload"][0])
            return json.loads(body.decode("utf-8"))  # Slack reads any other type as JSON
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
            raise HookError(400, "invalid_payload", f"the body is not JSON: {exc}") from None

    def _refuse(self, exc: HookError) -> None:
        self.set_status(exc.status)
        if exc.retry_after is not None:
            self.set_header("Retry-After", str(exc.retry_after))
        # `ok` and `error` as Slack's JSON answers have them: Alertmanager and Grafana read a
        # JSON answer's `ok` (a text one must be "ok"), and log its `error`.
        self.finish(json.dumps({"ok": False, "error": exc.code, "code": exc.code,
                                "reason": exc.reason}, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, Refused):
            self._refuse(exc.error)
            return
        code = exc.status_code if isinstance(exc, HTTPError) else status_code
        self.finish(json.dumps({"code": "method_not_allowed" if code == 405 else "error",
                                "reason": self._reason}))
