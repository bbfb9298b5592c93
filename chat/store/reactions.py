"""A message's reactions as the stores keep them: one JSON text in its row, changed in the
transaction that takes the change number (so reads need no second query)."""

from __future__ import annotations

import json
from typing import Any


class TooManyReactions(Exception):
    """A new emoji on a message that already has `limit` distinct ones."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a message holds at most {limit} distinct reactions")
        self.limit = limit


def changed(stored: str | None, emoji: str, party: str, name: str, add: bool,
            limit: int) -> str | None:
    """The reactions after `party` (shown as `name`) adds or takes back `emoji`.

    Stored as {emoji: [[party, name], ...]} in the order given; adding twice or taking back
    what is not there changes nothing (two tabs toggling end the same).
    """
    reactions: dict[str, list[list[str]]] = json.loads(stored) if stored else {}
    who = reactions.get(emoji, [])
    mine = [entry for entry in who if entry[0] == party]
    if add and not mine:
        if emoji not in reactions and len(reactions) >= limit:
            raise TooManyReactions(limit)
        reactions[emoji] = [*who, [party, name]]
    elif not add and mine:
        rest = [entry for entry in who if entry[0] != party]
        if rest:
            reactions[emoji] = rest
        else:
            del reactions[emoji]
    return json.dumps(reactions, ensure_ascii=False) if reactions else None


def shown(stored: str | None) -> list[dict[str, Any]]:
    """As clients get them: [{emoji, count, users (names)}], in the order first given."""
    if not stored:
        return []
    return [{"emoji": emoji, "count": len(who), "users": [name for _, name in who]}
            for emoji, who in json.loads(stored).items()]
