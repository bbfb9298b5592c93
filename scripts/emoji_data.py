"""Writes static/vendor/emoji.json, the page's emoji picker data, from emojibase-data.

Run from the repository root with the project's Python (it asks the server's own code which
emoji and shortcodes it accepts, so the picker offers only what the server takes):

    cd "$(mktemp -d)" && npm pack emojibase-data@17.0.0 && tar -xzf emojibase-data-17.0.0.tgz
    cd <repo> && PYTHONPATH=. .venv/bin/python scripts/emoji_data.py <that dir>/package

What it keeps of en/compact.json (~570 kB) is what the picker shows and searches: per category,
each emoji (in the form the server's shortcodes make, so a reaction picked here and one sent
as `:thumbs_up:` are the same reaction), its name, the shortcodes the server turns into it
(GitHub's, then the CLDR name), and the keywords not already in its name. Skin-tone variants,
the components (bare skin tones, hair) and the lone regional indicators are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import emoji

from chat.protocol.parse import reaction_emoji
from chat.protocol.text import expand_shortcodes

OUTPUT = Path("static/vendor/emoji.json")
COMPONENTS = "component"  # skin tones and hair: parts of other emoji, not reactions


def canonical(given: str) -> str | None:
    """The fully-qualified form the server uses for `given`, or None if it takes none.

    emojibase adds U+FE0F to some emoji that Unicode writes without it (👍️ for 👍); the
    server's table keys the Unicode form, and a reaction is compared as a string."""
    for form in (given, given.replace("\ufe0f", "")):
        data = emoji.EMOJI_DATA.get(form)
        if data is not None and data["status"] == emoji.STATUS["fully_qualified"]:
            return form
    return None


def shortcodes(char: str, github: list[str]) -> list[str]:
    """The codes (without colons) that the server turns into `char`: GitHub's, the CLDR name,
    the emoji package's aliases (a code that the server takes for another emoji is left out:
    its `:beetle:` is 🐞, so 🪲 has none)."""
    aliases = emoji.EMOJI_DATA[char].get("alias", [])
    names = [*github, emoji.demojize(char).strip(":"), *(a.strip(":") for a in aliases)]
    out: list[str] = []
    for name in names:
        if name not in out and expand_shortcodes(f":{name}:") == char:
            out.append(name)
    return out


def keywords(label: str, tags: list[str]) -> str:
    """The tags that add a word to the name, as one space-separated string."""
    words = set(label.lower().replace(":", " ").split())
    return " ".join(t for t in tags if t.lower() not in words)


def build(package: Path) -> dict[str, Any]:
    """The picker's data from the unpacked emojibase-data package at `package`."""
    meta = json.loads((package / "package.json").read_text())
    messages = json.loads((package / "en/messages.json").read_text())
    compact = json.loads((package / "en/compact.json").read_text())
    github = json.loads((package / "en/shortcodes/github.json").read_text())
    groups = sorted(messages["groups"], key=lambda g: g["order"])
    by_group: dict[int, list[list[Any]]] = {g["order"]: [] for g in groups}
    for entry in sorted(compact, key=lambda e: e.get("order", 0)):
        char = canonical(entry["unicode"])
        if "group" not in entry or char is None or reaction_emoji(char) != char:
            continue
        codes = github.get(entry["hexcode"], [])
        codes = [codes] if isinstance(codes, str) else codes
        by_group[entry["group"]].append(
            [char, entry["label"], shortcodes(char, codes),
             keywords(entry["label"], entry.get("tags", []))])
    categories = [
        {"id": g["key"], "name": g["message"].capitalize(), "emoji": by_group[g["order"]]}
        for g in groups if g["key"] != COMPONENTS and by_group[g["order"]]
    ]
    source = f"{meta['name']} {meta['version']}: en/compact.json, en/shortcodes/github.json"
    return {"source": source, "emojiPackage": emoji.__version__, "categories": categories}


def main() -> int:
    """Reads the package directory given, writes the JSON (compact: the page downloads it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the unpacked npm package's directory")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default {OUTPUT}")
    args = parser.parse_args()
    data = build(args.package)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    args.output.write_text(text + "\n", encoding="utf-8")
    count = sum(len(c["emoji"]) for c in data["categories"])
    print(f"{args.output}: {count} emoji, {len(text.encode()):,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
