"""The report of the scaling scenario: one row per number of nodes, then each phase's layout."""

from __future__ import annotations

from bench.env import Json, dig
from bench.report import machine_line
from bench.tables import head, num, row


def processes_us(result: Json | None) -> float | None:
    """CPU µs per delivery of the nodes and Redis together, as the load generator sampled it."""
    per = [v.get("us_per_dlv") for v in (dig(result, "procs") or {}).values()]
    known = [v for v in per if isinstance(v, (int, float)) and v >= 0]
    return sum(known) if known else None


def frames_per_write(result: Json | None) -> float | None:
    """Deliveries per socket write over every node, during the load (not the joins; a few
    writes carry other frames, so one message per flush reads about 1)."""
    counters = [c for c in (dig(result, "counters") or {}).values() if c]
    writes = sum(c.get("chat_socket_writes_total", 0.0) for c in counters)
    deliveries = sum(c.get("chat_deliveries_total", 0.0) for c in counters)
    return deliveries / writes if writes else None


def scaling_figures(n: int, clients_per_node: int, phases: Json, first: Json | None) -> Json:
    """The figures of one N; `first` those of the first row, for the efficiency."""
    best = dig(phases, "ramp", "loadgen", "result")
    fixed = dig(phases, "fixed", "loadgen", "result")
    sustained = dig(best, "delivered_per_s")
    per_node = sustained / n if isinstance(sustained, (int, float)) else None
    base = dig(first, "per_node") if first else per_node
    delivered = dig(fixed, "delivered")
    pg_s = dig(phases, "fixed", "procs", "pg", "cpu_s")
    issues = sum(
        int(v.get("count", 0))
        for ph in phases.values()
        for v in (ph.get("log_issues") or {}).values()
    )
    return {
        "nodes": n,
        "clients": clients_per_node * n,
        "shared": any(ph.get("shared") for ph in phases.values()),
        "sustained": sustained,
        "per_node": per_node,
        "efficiency": per_node / base if per_node is not None and base else None,
        "sustained_p99": dig(best, "p99_ms"),
        "ramp_us": processes_us(best),
        "rate": dig(fixed, "target_per_s"),
        "p50": dig(fixed, "p50_ms"),
        "p99": dig(fixed, "p99_ms"),
        "lost": dig(fixed, "lost"),
        "fixed_us": processes_us(fixed),
        "fixed_batch": frames_per_write(phases.get("fixed")),
        "ramp_batch": frames_per_write(phases.get("ramp")),
        "pg_us": pg_s * 1e6 / delivered if isinstance(pg_s, float) and delivered else None,
        "errors": [ph["error"] for ph in phases.values() if ph.get("error")],
        "log_issues": issues,
    }


COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("nodes", "nodes", "d", ""),
    ("clients", "clients", ",", ""),
    ("highest sustained deliveries/s", "sustained", ",.0f", ""),
    ("per node", "per_node", ",.0f", ""),
    ("efficiency (per node ÷ the first row's)", "efficiency", ".2f", ""),
    ("p99 there", "sustained_p99", ".0f", " ms"),
    ("CPU µs/delivery there (nodes + Redis)", "ramp_us", ".2f", ""),
    ("fixed rate", "rate", ",.0f", "/s"),
    ("p50 / p99 at it", "p50", ".1f", ""),
    ("lost", "lost", ",", ""),
    ("CPU µs/delivery (nodes + Redis)", "fixed_us", ".2f", ""),
    ("frames per socket write (fixed / ramp)", "fixed_batch", ".2f", ""),
    ("… PostgreSQL", "pg_us", ".2f", ""),
    ("warnings in logs", "log_issues", ",", ""),
)


def cell(fig: Json, key: str, fmt: str, unit: str) -> str:
    if key == "p50":
        return f"{num(fig['p50'], fmt)} / {num(fig['p99'], fmt, ' ms')}"
    if key == "fixed_batch":
        return f"{num(fig['fixed_batch'], fmt)} / {num(fig['ramp_batch'], fmt)}"
    text = num(fig[key], fmt, unit)
    return f"{text} ⚠" if key == "nodes" and fig["shared"] else text


def scaling_report(data: Json) -> str:
    """The markdown report of a scaling run."""
    lines = [
        f"# Scaling benchmark ({'quick' if data['quick'] else 'full'} run, {data['started']})",
        "",
        f"{machine_line(data['machine'])}. Loopback TCP; a fresh Redis, PostgreSQL and nodes"
        " for every phase.",
        f"Command: `{data['command']}`",
        "",
        f"Load: {data['clients_per_node']:,} clients per node, spread over the nodes in turn,"
        f" {data['senders']} senders among them (spread too); a ramp to saturation (p99 ≤ 500"
        f" ms, no loss), then a fixed {data['rate_per_node']:,.0f} deliveries/s per node."
        " ⚠: processes shared cores (fewer cores than N + 3).",
        "",
        *head([title for title, *_ in COLUMNS]),
    ]
    figures: list[Json] = []
    for n, phases in data["by_nodes"].items():
        fig = scaling_figures(int(n), data["clients_per_node"], phases,
                              figures[0] if figures else None)
        figures.append(fig)
        lines.append(row(cell(fig, key, fmt, unit) for _, key, fmt, unit in COLUMNS))
    lines += ["", "## Layouts", ""]
    for n, phases in data["by_nodes"].items():
        layouts = {ph.get("layout") for ph in phases.values()}
        lines += [f"- {n} node(s): {'; '.join(sorted(filter(None, layouts)))}"]
    errors = [f"- {f['nodes']} node(s): {e}" for f in figures for e in f["errors"]]
    if errors:
        lines += ["", "## Errors", "", *errors]
    return "\n".join(lines)
