"""Settings from the environment (CHAT_<NAME>) and the command line, through tornado.options."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import fields
from typing import Any

from tornado.options import OptionParser

from chat.config import ConfigError, Settings, flag


def _env_name(name: str) -> str:
    return "CHAT_" + name.upper()


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(raw: str) -> bool:
    """on/off, true/false, yes/no, 1/0 (any case); ValueError for anything else.

    tornado.options reads every word but false, 0 and f as true: `--xheaders=off` would turn
    it on.
    """
    if raw.lower() in TRUE_WORDS:
        return True
    if raw.lower() in FALSE_WORDS:
        return False
    raise ValueError(f"{raw!r} is not on or off (nor true/false, yes/no, 1/0)")


def _convert(name: str, kind: type, raw: str) -> Any:
    try:
        if kind is bool:
            return parse_bool(raw)
        if kind is list:
            return [item.strip() for item in raw.split(",") if item.strip()]
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{_env_name(name)}={raw!r} is not a valid {kind.__name__}") from None


def _kind(f: dataclasses.Field[Any]) -> type:
    return {"int": int, "float": float, "str": str, "bool": bool}.get(str(f.type), list)


def define_options(
    parser: OptionParser, environ: dict[str, str] | None = None
) -> dict[str, ConfigError]:
    """Define every setting on `parser`; CHAT_<NAME> in `environ` replaces the default.

    Returns the environment values that could not be read, by option name (with dashes): they
    are errors unless the command line gives that option anyway.
    """
    environ = dict(os.environ) if environ is None else environ
    defaults = Settings()
    env_errors: dict[str, ConfigError] = {}
    for f in fields(Settings):
        kind = _kind(f)
        default = getattr(defaults, f.name)
        if _env_name(f.name) in environ:
            try:
                default = _convert(f.name, kind, environ[_env_name(f.name)])
            except ConfigError as exc:
                env_errors[flag(f.name)] = exc
        unit = f.metadata["unit"]
        parser.define(
            flag(f.name),
            default=default,
            type=str if kind is list else kind,
            multiple=kind is list,
            help=f.metadata["help"] + (f" [{unit}]" if unit else "")
            + f" (env {_env_name(f.name)})",
            metavar=unit.split("/")[0].upper() if unit else None,
        )
    return env_errors


def from_options(parser: OptionParser) -> Settings:
    """Settings from a parser on which define_options() ran and the command line was parsed."""
    values = {f.name: getattr(parser, f.name) for f in fields(Settings)}
    return Settings(**values)
