"""JSON in and out: orjson when installed (the `fast` extra), else the standard library."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the installed extras
    orjson = None  # type: ignore[assignment]


def loads(text: str | bytes) -> Any:
    """Parse JSON; ValueError for anything that is not valid JSON (too deep included)."""
    try:
        if orjson is not None:
            return orjson.loads(text)
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps(obj: Any) -> bytes:
    """Serialize to compact UTF-8 JSON."""
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
