"""A file's name as people see it: sanitised for display, never used as a path."""

from __future__ import annotations

import unicodedata

NAME_MAX_CHARS = 200  # a long name is shown whole in a chip and fits a Content-Disposition
FALLBACK_NAME = "file"  # what a name with nothing showable left becomes


def display_name(raw: str) -> str:
    """The last path segment of `raw`, without control or format characters (bidi overrides,
    zero-width), NFC, trimmed, at most NAME_MAX_CHARS (the extension kept); never empty.

    The result only labels the file: storage is by content hash, so no name reaches the disk.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    # Cc: NUL, newlines, escapes; Cf: U+202E and its kin, which make "gpj.exe" read "exe.jpg";
    # Co/Cs/Cn: private, lone surrogates and unassigned code points show as nothing or boxes.
    name = "".join(ch for ch in name if unicodedata.category(ch) not in
                   ("Cc", "Cf", "Co", "Cs", "Cn"))
    name = " ".join(name.split()).strip(" .")  # no leading dot (hidden) nor "..", one space each
    if not name:
        return FALLBACK_NAME
    if len(name) > NAME_MAX_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[:NAME_MAX_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:NAME_MAX_CHARS]
    return name
