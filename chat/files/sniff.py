"""The content type of a file, from its first bytes: never from what the client said."""

from __future__ import annotations

SNIFF_BYTES = 4096  # the bytes read to decide: every signature below sits in the first few
OCTET_STREAM = "application/octet-stream"
# The images Pillow decodes, thumbnails and shows inline (chat/files/images.py).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Types a browser would run as a page on our origin if shown inline: always served as
# application/octet-stream attachments (handlers/api/files.py), whatever else guards them.
ACTIVE_TYPES = frozenset({"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml",
                          "application/xml"})

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (4, b"ftyp", "video/mp4"),
)
# Markup a browser sniffing the bytes would take for a page (WHATWG MIME Sniffing, 7.1).
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe",
                b"<meta", b"<title", b"<style", b"<div", b"<a ", b"<p>", b"<!--", b"<table",
                b"<font", b"<br", b"<h1", b"<b>", b"<img")


def sniff(head: bytes) -> str:
    """The type of a file starting with `head` (its first SNIFF_BYTES or all of it)."""
    for offset, magic, kind in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    if b"<svg" in text[:SNIFF_BYTES] and (text.startswith(b"<svg") or text.startswith(b"<?xml")
                                          or text.startswith(b"<!doctype svg")):
        return "image/svg+xml"
    if text.startswith(_HTML_STARTS):
        return "text/html"
    if text.startswith(b"<?xml"):
        return "text/xml"
    if head and b"\x00" not in head and _utf8_prefix(head):
        return "text/plain"
    return OCTET_STREAM


def _utf8_prefix(head: bytes) -> bool:
    """Whether `head` is UTF-8, allowing a character cut at its end."""
    for cut in range(4):
        try:
            head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False
