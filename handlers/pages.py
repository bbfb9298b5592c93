"""GET / (the page), static files, and the security headers they carry."""

from __future__ import annotations

from tornado.web import RequestHandler, StaticFileHandler

# The page runs only its own scripts and styles; avatars may come from Gravatar.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https://www.gravatar.com https://secure.gravatar.com",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(handler: RequestHandler) -> None:
    for name, value in SECURITY_HEADERS.items():
        handler.set_header(name, value)


class PageHandler(RequestHandler):
    """The chat page."""

    def initialize(self, template: str = "index.html") -> None:
        self.template = template

    def set_default_headers(self) -> None:
        add_security_headers(self)
        self.set_header("Cache-Control", "no-cache")

    def get(self) -> None:
        self.render(self.template)

    def head(self) -> None:
        self.render(self.template)  # Tornado sends the headers of GET without the body


class StaticHandler(StaticFileHandler):
    """Static files with the same headers as the page."""

    def set_default_headers(self) -> None:
        add_security_headers(self)
