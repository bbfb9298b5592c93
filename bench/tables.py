"""Markdown tables of figures: the cell formats and the one row builder every report table uses.

A details table is a tuple of `Column`s over records (one per phase or ramp step); each
column names its title and how a record gives its cell, so the two suites' reports share
their common columns instead of repeating the rows that build them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.env import Json, dig


def num(v: Any, fmt: str, unit: str = "") -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
        return f"{v:{fmt}}{unit}"
    return "n/a"


def ratio(ours: Any, go: Any, higher_better: bool) -> str:
    if not all(isinstance(v, (int, float)) and v > 0 for v in (ours, go)):
        return ""
    r = ours / go
    better = r >= 1 if higher_better else r <= 1
    return f"{r:.2f}×{' ✓' if better else ''}"


def span(values: list[Any], fmt: str, unit: str = "") -> str:
    """`lo–hi` of the measured values (`n/a` if none)."""
    vals = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    vals = [v for v in vals if v >= 0]
    if not vals:
        return "n/a"
    lo, hi = num(vals[0], fmt), num(vals[-1], fmt)
    return f"{lo}{unit}" if lo == hi else f"{lo}–{hi}{unit}"


def row(cells: Iterable[str]) -> str:
    """One markdown table row."""
    return "| " + " | ".join(cells) + " |"


def head(titles: Sequence[str]) -> list[str]:
    """A markdown table's title row and rule."""
    return [row(titles), "|" + "---|" * len(titles)]


@dataclass(frozen=True)
class Column:
    """One column of a details table: its title and its cell for a record."""

    title: str
    cell: Callable[[Json], str]


def figure(title: str, path: str, fmt: str, unit: str = "") -> Column:
    """A column of the number at `path` (dotted keys) in each record, formatted as `num`."""
    keys = tuple(path.split("."))
    return Column(title, lambda record: num(dig(record, *keys), fmt, unit))


def text(title: str, key: str) -> Column:
    """A column of the text each record holds at `key`."""
    return Column(title, lambda record: str(record.get(key, "")))


def table(columns: Sequence[Column], records: Iterable[Json]) -> list[str]:
    """The lines of a markdown table: one row per record."""
    lines = head([c.title for c in columns])
    lines += [row(c.cell(record) for c in columns) for record in records]
    return lines


def phase_columns(
    middle: Sequence[Column], after_load: Sequence[Column] = ()
) -> tuple[Column, ...]:
    """A phase table: name, time, rate, latency and loss, the `middle` columns, the load
    generator's busy share, the `after_load` columns, other processes' CPU, notes.

    Its records hold the phase (`phase`), its load generator's report (`lg`) and result (`r`),
    and its `notes`.
    """
    return (
        text("phase", "name"),
        figure("seconds", "phase.seconds", ".0f"),
        figure("deliveries/s", "r.delivered_per_s", ",.0f"),
        figure("p50", "r.p50_ms", ".1f", " ms"),
        figure("p99", "r.p99_ms", ".1f", " ms"),
        figure("max", "r.max_ms", ".1f", " ms"),
        figure("lost", "r.lost", ","),
        *middle,
        figure("loadgen busy", "lg.loadgen_cpu_max", ".0%"),
        *after_load,
        figure("others' CPU", "phase.other_cpu.cores", ".2f", " cores"),
        text("notes", "notes"),
    )


def step_columns(
    cpu: Sequence[Column], waited: Column, with_max: bool = False
) -> tuple[Column, ...]:
    """A ramp's steps: rate, latency (`with_max`: and the maximum) and loss, the `cpu` columns,
    the load generator's busy share, the `waited` column, and whether the step passed."""
    return (
        figure("target/s", "target_per_s", ",.0f"),
        figure("delivered/s", "delivered_per_s", ",.0f"),
        figure("p50", "p50_ms", ".1f", " ms"),
        figure("p99", "p99_ms", ".1f", " ms"),
        *([figure("max", "max_ms", ".1f", " ms")] if with_max else []),
        figure("lost", "lost", ","),
        *cpu,
        figure("loadgen busy", "loadgen_cpu", ".0%"),
        waited,
        Column("pass", lambda step: "yes" if step.get("pass") else "no"),
    )
