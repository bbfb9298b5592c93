"""A file's display name and its sniffed type: pure functions, fed values."""

from __future__ import annotations

import pytest

from chat.files.names import NAME_MAX_CHARS, display_name
from chat.files.sniff import sniff


@pytest.mark.parametrize(("raw", "shown"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    ("photo\u202egpj.exe", "photogpj.exe"),  # RIGHT-TO-LEFT OVERRIDE gone: no "exe.jpg" trick
    ("a\x00b\nc\td.txt", "abcd.txt"),
    ("  ..hidden  ", "hidden"),
    ("..", "file"),
    ("", "file"),
    ("\u200b\u2066", "file"),
    ("Cafe\u0301.png", "Café.png"),  # NFC
])
def test_display_names_are_cleaned(raw: str, shown: str) -> None:
    """Paths, control and format characters, leading dots and blanks are dropped."""
    assert display_name(raw) == shown


def test_a_long_name_is_cut_keeping_its_extension() -> None:
    """A name past the limit is cut to it, its extension kept."""
    name = display_name("x" * 500 + ".jpeg")
    assert len(name) == NAME_MAX_CHARS and name.endswith("x.jpeg")


@pytest.mark.parametrize(("head", "kind"), [
    (b"\x89PNG\r\n\x1a\n....", "image/png"),
    (b"\xff\xd8\xff\xe0", "image/jpeg"),
    (b"GIF89a", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"%PDF-1.7", "application/pdf"),
    (b"\xef\xbb\xbf  <!DOCTYPE HTML><p>", "text/html"),
    (b"<script>alert(1)</script>", "text/html"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">', "image/svg+xml"),
    (b"<svg onload=alert(1)>", "image/svg+xml"),
    (b"plain words \xc3", "text/plain"),  # UTF-8 cut mid-character at the end
    (b"\x00\x01\x02", "application/octet-stream"),
    (b"", "application/octet-stream"),
])
def test_the_type_comes_from_the_bytes(head: bytes, kind: str) -> None:
    """Magic numbers, markup a browser would render, UTF-8 text, else octet-stream."""
    assert sniff(head) == kind
