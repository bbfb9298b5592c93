"""GET / (the page), static files, and the security headers every response carries."""

from __future__ import annotations

from pathlib import Path

from tornado.httputil import HTTPHeaders
from tornado.web import OutputTransform, RequestHandler, StaticFileHandler

# The page runs only its own scripts and styles; its avatars are drawn (data: URLs), or come
# from Gravatar with --avatars gravatar (GRAVATAR_POLICY, the page's alone).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
GRAVATAR_POLICY = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self' data:",
    "img-src 'self' data: https://www.gravatar.com https://secure.gravatar.com")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def page_folder(name: str) -> Path:
    """The page's `static` or `templates` folder: an installed wheel's copy, else the checkout's."""
    # A wheel carries the repository's top-level static/ and templates/ inside this package
    # (setup.py maps them here); a checkout, or an editable install of one, has them beside
    # chat_server.py. The installed copy is looked for first: above an installed `handlers` is
    # site-packages itself, where another project may have left a `static/` of its own.
    here = Path(__file__).resolve().parent
    installed = here / name
    return installed if installed.is_dir() else here.parent / name


class ResponseHeaders(OutputTransform):
    """Every response, errors and 404s included, with SECURITY_HEADERS and no `Server` header.

    Tornado's `Server: TornadoServer/<version>` tells a scanner which flaws to try. A 101
    (WebSocket upgrade) gets no security headers: it is no document, and every handshake
    would carry ~400 bytes more.
    """

    def transform_first_chunk(self, status_code: int, headers: HTTPHeaders, chunk: bytes,
                              finishing: bool) -> tuple[int, HTTPHeaders, bytes]:
        headers.pop("Server", None)
        if status_code != 101:
            for name, value in SECURITY_HEADERS.items():
                if name not in headers:
                    headers[name] = value
        return status_code, headers, chunk


class PageHandler(RequestHandler):
    """The chat page, told what the server's settings change in its forms: `avatars`
    (--avatars: whether to ask for an email), `registration` (--registration: whether creating
    an account takes an invite, or is closed), `guests` (--guests) and `room_creation`
    (--room-creation: whether joining a new name makes a room)."""

    def initialize(self, template: str = "index.html", avatars: str = "initials",
                   registration: str = "open", guests: bool = True,
                   room_creation: str = "explicit") -> None:
        self.template = template
        self.avatars = avatars
        self.page_settings = {"avatars": avatars, "registration": registration,
                              "guests": "on" if guests else "off",
                              "room_creation": room_creation}

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-cache")

    def prepare(self) -> None:
        if self.avatars == "gravatar":  # ResponseHeaders keeps a policy set here
            self.set_header("Content-Security-Policy", GRAVATAR_POLICY)

    def get(self) -> None:
        self.render(self.template, **self.page_settings)

    def head(self) -> None:
        self.render(self.template, **self.page_settings)  # GET's headers, without the body


class StaticHandler(StaticFileHandler):
    """Static files (with the page's headers, as every response: see ResponseHeaders)."""

    def set_extra_headers(self, path: str) -> None:
        # A versioned URL (?v=, from static_url) is cached for long by Tornado. The page's ES
        # modules import one another by plain URLs, which a browser would otherwise keep by
        # heuristics for days after an upgrade: it must ask again (a 304 when unchanged).
        if "v" not in self.request.arguments:
            self.set_header("Cache-Control", "no-cache")
