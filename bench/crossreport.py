"""The report of the cross-node suite: ranges over the runs, then every phase and ramp step."""

from __future__ import annotations

from bench.crossnode import CROSS_PHASES, TOPOLOGIES, Placement
from bench.env import Json, dig
from bench.report import flag, machine_line, phase_notes
from bench.tables import figure, head, num, phase_columns, row, span, step_columns, table

TOPOLOGY_SHORT = {
    "two": "two nodes (A → Redis → B), PostgreSQL",
    "one": "one node, Redis broker, PostgreSQL",
    "memory": "one process, memory://",
}


def cross_figures(phases: Json) -> Json:
    """The figures of one topology in one run."""
    best = dig(phases, "ramp", "loadgen", "result")
    fixed = dig(phases, "fixed", "loadgen", "result")
    idle = dig(phases, "idle", "loadgen")

    def cpu(step: Json | None, prefix: str) -> Json:
        per = {n: dig(step, "procs", n, "us_per_dlv") for n in ("b", "a", "redis")}
        known = [v for v in per.values() if isinstance(v, (int, float)) and v >= 0]
        return {
            f"{prefix}_us_b": per["b"],
            f"{prefix}_us_a": per["a"],
            f"{prefix}_us_redis": per["redis"],
            f"{prefix}_us_all": sum(known) if known and per["b"] is not None else None,
        }

    issues = 0
    for ph in phases.values():
        for v in (ph.get("log_issues") or {}).values():
            issues += int(v.get("count", 0))
    return {
        "sustained": dig(best, "delivered_per_s"),
        "sustained_p99": dig(best, "p99_ms"),
        "sustained_core": dig(best, "server_core_us_per_dlv"),
        "ramp_stop": dig(phases, "ramp", "loadgen", "stop_reason"),
        "ramp_flag": flag(phases.get("ramp")),
        **cpu(best, "ramp"),
        "p50": dig(fixed, "p50_ms"),
        "p99": dig(fixed, "p99_ms"),
        "max": dig(fixed, "max_ms"),
        "lost": dig(fixed, "lost"),
        "echo_p50": dig(fixed, "sender_echo", "p50_ms"),
        "echo_p99": dig(fixed, "sender_echo", "p99_ms"),
        "fixed_flag": flag(phases.get("fixed")),
        **cpu(fixed, "fixed"),
        "kib_conn": dig(idle, "server_kib_per_conn"),
        "handshake_us": dig(idle, "server_handshake_cpu_us"),
        "last_dlv": dig(idle, "last_delivery_ms_median"),
        "idle_all": dig(idle, "all_delivered"),
        "idle_flag": flag(phases.get("idle")),
        "log_issues": issues,
    }


CROSS_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("highest sustained deliveries/s (p99 ≤ 500 ms, no loss)", "sustained", ",.0f", ""),
    ("… p99 of that step", "sustained_p99", ".0f", " ms"),
    ("… CPU µs per delivery there: node B (receivers)", "ramp_us_b", ".2f", ""),
    ("… node A (senders)", "ramp_us_a", ".3f", ""),
    ("… Redis", "ramp_us_redis", ".3f", ""),
    ("… all processes", "ramp_us_all", ".2f", ""),
    ("… node B's core busy (incl. softirq) µs per delivery", "sustained_core", ".2f", ""),
    ("p50 at 10,000 deliveries/s (send → receipt on B)", "p50", ".1f", " ms"),
    ("p99 at 10,000 deliveries/s", "p99", ".1f", " ms"),
    ("max at 10,000 deliveries/s", "max", ".1f", " ms"),
    ("lost at 10,000 deliveries/s", "lost", ",", ""),
    ("senders' own copies at 10,000/s, p50 (node A's local fan-out)", "echo_p50", ".1f", " ms"),
    ("… p99", "echo_p99", ".1f", " ms"),
    ("CPU µs per delivery at 10,000/s: node B", "fixed_us_b", ".2f", ""),
    ("… node A", "fixed_us_a", ".2f", ""),
    ("… Redis", "fixed_us_redis", ".2f", ""),
    ("… all processes", "fixed_us_all", ".2f", ""),
    ("node B's RSS per idle connection (10,000)", "kib_conn", ".1f", " KiB"),
    ("node B's CPU per WebSocket handshake", "handshake_us", ".0f", " µs"),
    ("one message to 10,000 idle receivers, last delivery (median)", "last_dlv", ".0f", " ms"),
    ("warnings/errors in the processes' logs", "log_issues", ",", ""),
)


def cross_summary(data: Json) -> str:
    runs: list[Json] = data["runs"]
    topologies = [t for t in TOPOLOGIES if any(t in r for r in runs)]
    figs = {
        t: [cross_figures(dig(r, t, "phases") or {}) for r in runs if t in r] for t in topologies
    }
    lines = head(["figure", *(TOPOLOGY_SHORT[t] for t in topologies)])
    for title, key, fmt, unit in CROSS_ROWS:
        cells = [title]
        for t in topologies:
            if t != "two" and key.endswith("_us_a"):
                cells.append("(= node B)")
                continue
            if t == "memory" and key.endswith("_us_redis"):
                cells.append("–")
                continue
            cells.append(span([f[key] for f in figs[t]], fmt, unit))
        lines.append(row(cells))
    return "\n".join(lines)


# The processes whose CPU per delivery the tables show: title, key, format (node A's and Redis's
# cost is per message, a thousandth of node B's per delivery: one more digit).
PROCS = (("B", "b", ".2f"), ("A", "a", ".3f"), ("Redis", "redis", ".3f"))
PHASE_TABLE = phase_columns(
    [figure(f"{title} µs/dlv", f"r.procs.{key}.us_per_dlv", fmt) for title, key, fmt in PROCS]
)
STEP_TABLE = step_columns(
    [
        column
        for title, key, fmt in PROCS
        for column in (
            figure(f"{title} CPU", f"procs.{key}.share", ".0%"),
            figure(f"{title} µs/dlv", f"procs.{key}.us_per_dlv", fmt),
        )
    ],
    figure("loadgen waited", "loadgen_runq_wait_ms", ".0f", " ms"),
)


def phase_record(name: str, p: Json) -> Json:
    """A row of PHASE_TABLE: the phase, its load generator's figures, and notes on all three
    processes."""
    lg = p.get("loadgen") or {}
    r = lg.get("result") or {}
    notes = phase_notes(name, lg)
    echo = r.get("sender_echo")
    if name == "fixed" and echo:
        notes.append(
            f"senders' own copies p50 {num(echo.get('p50_ms'), '.1f', ' ms')},"
            f" p99 {num(echo.get('p99_ms'), '.1f', ' ms')}"
        )
    counters = lg.get("counters") or {}
    if counters.get("unexpected_closes") or counters.get("sender_closes"):
        notes.append(f"closes: {counters.get('unexpected_close_why')}")
    pg_cpu = dig(p, "procs", "pg", "cpu_s")
    if isinstance(pg_cpu, (int, float)):
        notes.append(f"PostgreSQL (all its processes) {pg_cpu:.2f} CPU s over the phase")
    if p.get("error"):
        notes.append(f"error: {p['error']}")
    if p.get("contended"):
        notes.append("⚠ disturbed")
    down = [n for n, up in (p.get("alive_after") or {}).items() if not up]
    if down:
        notes.append(f"not answering after the phase: {', '.join(down)}")
    for proc, issues in (p.get("log_issues") or {}).items():
        if issues.get("count"):
            notes.append(f"{proc} log: {issues['count']} warnings/errors")
    return {"name": name, "phase": p, "lg": lg, "r": r, "notes": "; ".join(notes)}


def cross_details(topology: str, res: Json) -> str:
    out = [f"#### {res.get('title', topology)}", ""]
    ph: Json = res.get("phases", {})
    out += table(PHASE_TABLE, [phase_record(name, p) for name, p in ph.items()])
    steps = dig(ph, "ramp", "loadgen", "steps")
    if isinstance(steps, list) and steps:
        out += [
            "",
            "Ramp steps (CPU shares are of one core, over the step from its first send to its"
            " last delivery):",
            "",
            *table(STEP_TABLE, steps),
        ]
    issues = [
        f"- {proc}: " + " / ".join(f"`{line}`" for line in v["first"])
        for p in ph.values()
        for proc, v in (p.get("log_issues") or {}).items()
        if v.get("count")
    ]
    if issues:
        out += ["", "Log lines (first of each kind, per phase):", "", *issues]
    out.append("")
    return "\n".join(out)


def cross_report(data: Json) -> str:
    m = data["machine"]
    cores = Placement(**data["placement"])
    lines = [
        f"# Cross-node delivery benchmark ({'quick' if data['quick'] else 'full'} run,"
        f" {data['started']}, {len(data['runs'])} run{'s' if len(data['runs']) != 1 else ''})",
        "",
        f"{machine_line(m)}, {data.get('redis_version', 'redis ?')}."
        " Loopback TCP; a fresh Redis and fresh nodes for every phase.",
        f"Command: `{data['command']}`",
        "",
        "Placement (taskset):",
        "",
        *[
            f"- {TOPOLOGY_SHORT[t]}: {cores.describe(t)}"
            for t in TOPOLOGIES
            if t in data["topologies"]
        ],
        "",
        "Load: the suite's fixed, ramp and idle phases, but the 10 senders are extra"
        " connections to node A (`-sender-addr`) and only the connections to node B count as"
        " receivers; with one node both go to it. A delivery is a message frame received on"
        " node B. Every message is a legacy post to `general`: node A stores it with the Redis"
        " append script, which PUBLISHes it; each node's subscriber connection receives it and"
        " the node fans it out.",
        "",
        "## Summary (range over the runs)",
        "",
        cross_summary(data),
        "",
        "CPU is utime+stime from /proc/PID/stat (10 ms ticks) over the step, from its first send"
        " to its last delivery, divided by the deliveries on node B (node A's and Redis's cost"
        " is per message: divide by 1,000 receivers to compare). ⚑ marks a figure where the load"
        " generator was more than 85% busy, ⚠ one disturbed by other processes.",
        "",
        "## Phases",
        "",
        *[f"- `{p.name}`: {p.title}" for p in CROSS_PHASES if p.name in data["phases"]],
        "",
        "## Details",
        "",
    ]
    for i, run in enumerate(data["runs"], 1):
        lines += [f"### Run {i}", ""]
        for topology, res in run.items():
            lines.append(cross_details(topology, res))
    return "\n".join(lines)
