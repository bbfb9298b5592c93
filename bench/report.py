"""The report of the Go-vs-ours suite: the issue's summary table, then each server's phases."""

from __future__ import annotations

from bench.env import CORES, Json, dig
from bench.phases import PHASE_NAMES, PHASES
from bench.tables import (
    Column,
    figure,
    head,
    num,
    phase_columns,
    ratio,
    row,
    span,
    step_columns,
    table,
)


def flag(phase: Json | None) -> str:
    if phase is None:
        return ""
    lg = dig(phase, "loadgen")
    notes = []
    if dig(lg, "loadgen_busy_flag"):
        notes.append("⚑ load generator >85% busy")
    if phase.get("contended"):
        notes.append(f"⚠ other processes used {phase['other_cpu']['cores']:.2f} cores")
    if phase.get("error"):
        notes.append(f"error: {phase['error'][:80]}")
    return f" ({'; '.join(notes)})" if notes else ""


def figures(res: Json) -> Json:
    """The issue's target-table figures for one server."""
    ph: Json = res.get("phases", {})
    ramp, fixed, idle = ph.get("ramp"), ph.get("fixed"), ph.get("idle")
    slow, churn, steady = ph.get("slow"), ph.get("churn"), ph.get("steady")
    best = dig(ramp, "loadgen", "result")
    return {
        "sustained": dig(best, "delivered_per_s"),
        "ramp_flag": (" (⚑ load generator >85% busy)" if dig(best, "loadgen_busy_flag") else "")
        + (flag({k: v for k, v in ramp.items() if k != "loadgen"}) if ramp else "")
        + (
            " (≥: ramp stopped by the load generator)"
            if dig(ramp, "loadgen", "stop_reason") == "load generator above 85% busy"
            else ""
        ),
        "us_per_dlv": dig(best, "server_us_per_dlv"),
        "core_us_per_dlv": dig(best, "server_core_us_per_dlv"),
        "p99_10k": dig(fixed, "loadgen", "result", "p99_ms"),
        "p50_10k": dig(fixed, "loadgen", "result", "p50_ms"),
        "lost_10k": dig(fixed, "loadgen", "result", "lost"),
        "fixed_flag": flag(fixed),
        "p99_steady": dig(steady, "loadgen", "others", "worst_window_p99_ms"),
        "steady_flag": flag(steady),
        "kib_conn": dig(idle, "loadgen", "server_kib_per_conn"),
        "last_dlv": dig(idle, "loadgen", "last_delivery_ms_median"),
        "idle_all": dig(idle, "loadgen", "all_delivered"),
        "idle_conns": dig(idle, "loadgen", "connections"),
        "idle_flag": flag(idle),
        "slow": slow,
        "churn": churn,
    }


def rss_growth(phase: Json | None) -> tuple[float, float] | None:
    series = dig(phase, "loadgen", "server_rss_series")
    if not isinstance(series, list) or len(series) < 4:
        return None
    rss = [float(s["rss_kib"]) for s in series]
    mid = len(rss) // 2
    return (rss[mid] - rss[0]) / 1024, (rss[-1] - rss[mid]) / 1024


def slow_cell(phase: Json | None) -> str:
    if phase is None:
        return "n/a"
    if phase.get("error"):
        return f"error: {phase['error'][:60]}"
    others = dig(phase, "loadgen", "others") or {}
    lost, exp = others.get("lost", -1), others.get("expected", 0)
    p99 = others.get("worst_window_p99_ms", -1)
    fine = lost == 0 and 0 <= p99 <= 500
    growth = rss_growth(phase)
    dropped = dig(phase, "loadgen", "slow_reader", "dropped")
    parts = [
        "others fine" if fine else "others stall",
        f"lost {lost:,}/{exp:,}" if lost else "no loss",
        f"worst p99 {p99:.1f} ms",
    ]
    if growth:
        parts.append(f"RSS +{growth[0]:.1f} then +{growth[1]:.1f} MiB")
    parts.append("slow reader dropped" if dropped else "slow reader kept")
    return ", ".join(parts) + flag(phase)


def churn_cell(phase: Json | None) -> str:
    if phase is None:
        return "n/a"
    if phase.get("error"):
        return f"error: {phase['error'][:60]}"
    up = phase.get("server_alive_after")
    others = dig(phase, "loadgen", "others") or {}
    ch = dig(phase, "loadgen", "churn") or {}
    return (
        f"{'stayed up' if up else 'DIED'}, {ch.get('opened', 0):,} connects"
        f" ({ch.get('failed', 0)} failed, p99 {num(ch.get('connect_p99_ms'), '.1f', ' ms')}),"
        f" others lost {others.get('lost', -1):,}, worst p99"
        f" {num(others.get('worst_window_p99_ms'), '.1f', ' ms')}" + flag(phase)
    )


# The summary's rows: title, figure key, format, unit, target, higher is better, flag key.
SUMMARY_ROWS: tuple[tuple[str, str, str, str, str, bool, str], ...] = (
    ("highest sustained deliveries/s (p99 ≤ 500 ms, no loss)", "sustained", ",.0f", "",
     "≥ Go (then 2×)", True, "ramp_flag"),
    ("server CPU µs per delivered message at that load", "us_per_dlv", ".2f", " µs", "≤ 4",
     False, ""),
    ("… core 0 busy µs per delivery (server + the kernel's softirq work)", "core_us_per_dlv",
     ".2f", " µs", "", False, ""),
    ("p99 latency at 10,000 deliveries/s", "p99_10k", ".1f", " ms", "≤ 10 ms", False,
     "fixed_flag"),
    ("p99 at 10,000 deliveries/s after a saturation ramp, worst window (8 s; quick: 4 s)",
     "p99_steady", ".1f", " ms", "≤ 10 ms in every window", False, "steady_flag"),
    ("server memory per idle connection at 10,000 connections", "kib_conn", ".1f", " KiB",
     "≤ 14 KiB", False, "idle_flag"),
    ("one message to 10,000 idle clients, last delivery (median)", "last_dlv", ".0f", " ms",
     "≤ 100 ms", False, ""),
)  # fmt: skip


def summary(results: dict[str, Json]) -> str:
    """The issue's target table: each figure for the Go server, ours, their ratio, the target."""
    go, ours = figures(results.get("go", {})), figures(results.get("ours", {}))
    has_ours = "ours" in results
    titles = ["figure", "Go tutorial server"] + (["ours", "ours/Go"] if has_ours else [])
    lines = head([*titles, "target"])
    for title, key, fmt, unit, target, higher, fl in SUMMARY_ROWS:
        cells = [title, num(go[key], fmt, unit) + (go[fl] if fl else "")]
        if has_ours:
            cells += [
                num(ours[key], fmt, unit) + (ours[fl] if fl else ""),
                ratio(ours[key], go[key], higher),
            ]
        lines.append(row([*cells, target]))
    slow = ["one client stops reading", slow_cell(go["slow"])]
    churn = ["connection churn", churn_cell(go["churn"])]
    if has_ours:
        slow += [slow_cell(ours["slow"]), ""]
        churn += [churn_cell(ours["churn"]), ""]
    lines.append(row([*slow, "others fine, memory bounded"]))
    lines.append(row([*churn, "server stays up"]))
    return "\n".join(lines)


def phase_notes(name: str, lg: Json) -> list[str]:
    """The table's notes on an idle or ramp phase, from its load generator's report."""
    if name == "idle":
        # Each message to all: when the last client had it, and the server's CPU for it (the
        # fan-out's cost, which sets the first where the server is the limit).
        cpu_ms = [s["server_cpu_s"] * 1000 for s in lg.get("steps") or []
                  if isinstance(s.get("server_cpu_s"), (int, float))]
        return [
            f"{num(lg.get('connections'), ',')} conns in"
            f" {num(lg.get('connect_seconds'), '.2f', ' s')},"
            f" {num(lg.get('server_kib_per_conn'), '.1f', ' KiB/conn')},"
            f" handshake {num(lg.get('server_handshake_cpu_us'), '.0f', ' µs CPU')},"
            f" last delivery {span(lg.get('last_delivery_ms') or [], '.0f', ' ms')},"
            f" server CPU per message to all {span(cpu_ms, '.0f', ' ms')}"
        ]
    if name == "steady":
        p99s = lg.get("window_p99_ms") or []
        return ["p99 per window " + " · ".join(num(v, ".1f", " ms") for v in p99s)
                + f"; lost {num(dig(lg, 'others', 'lost'), ',')}"]
    if name == "ramp":
        return [
            f"stop: {lg.get('stop_reason')}; first failing rate"
            f" {num(lg.get('first_failing_rate'), ',.0f')}"
        ]
    return []


def _rss_cell(record: Json) -> str:
    srv = dig(record, "phase", "server") or {}
    return (
        f"{num(srv.get('rss_kib_before'), ',', ' KiB')} → "
        f"{num(srv.get('rss_kib_after'), ',', ' KiB')}"
    )


PHASE_TABLE = phase_columns(
    [figure("server CPU µs/dlv", "r.server_us_per_dlv", ".2f")],
    [Column("server RSS before → after", _rss_cell)],
)
STEP_TABLE = step_columns(
    [
        figure("server CPU", "server_cpu_share", ".0%"),
        figure("µs/dlv", "server_us_per_dlv", ".2f"),
        figure("core 0 µs/dlv", "server_core_us_per_dlv", ".2f"),
    ],
    figure("server waited for CPU", "server_runq_wait_ms", ".0f", " ms"),
    with_max=True,
)


def phase_record(name: str, p: Json) -> Json:
    """A row of PHASE_TABLE: the phase, its load generator's figures, and notes on both."""
    lg = p.get("loadgen") or {}
    r = lg.get("result") or {}
    others = lg.get("others") or {}
    notes = phase_notes(name, lg)
    if name in ("slow", "churn", "steady"):
        r = {
            "p99_ms": others.get("worst_window_p99_ms"),
            "max_ms": others.get("max_ms"),
            "lost": others.get("lost"),
        }
        if name != "steady":  # its notes (phase_notes) give each window's p99
            notes.append(slow_cell(p) if name == "slow" else churn_cell(p))
    writes = dig(p, "counters", "chat_socket_writes_total")
    if writes:  # ours: how well the fan-out batched (the scaling report has it per N)
        frames = dig(p, "counters", "chat_deliveries_total") / writes
        notes.append(f"{frames:.2f} frames per socket write")
    if p.get("error"):
        notes.append(f"error: {p['error']}")
    if p.get("contended"):
        named = [(n, c) for n, c in dig(p, "other_cpu", "top") or [] if c >= 0.01]
        top = ", ".join(f"{n} {c:.2f}" for n, c in named)
        notes.append(f"⚠ disturbed by {top + ' and ' if top else ''}short-lived processes")
    if not p.get("server_alive_after", True):
        notes.append("server not answering after the phase")
    return {"name": name, "phase": p, "lg": lg, "r": r, "notes": "; ".join(notes)}


def details(key: str, res: Json) -> str:
    out = [f"### {res.get('title', key)}", ""]
    if res.get("error"):
        return "\n".join([*out, f"not measured: {res['error']}", ""])
    ph: Json = res.get("phases", {})
    records = [phase_record(name, ph[name]) for name in PHASE_NAMES if ph.get(name) is not None]
    out += table(PHASE_TABLE, records)
    ramp = dig(ph, "ramp", "loadgen", "steps")
    if isinstance(ramp, list) and ramp:
        out += ["", "Ramp steps:", "", *table(STEP_TABLE, ramp)]
    out.append("")
    return "\n".join(out)


def machine_line(m: Json) -> str:
    """The machine a report's figures were measured on, for its first paragraph."""
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, Linux {m['kernel']},"
        f" Python {m['python']}, {m['go']}"
    )


def report(data: Json) -> str:
    m = data["machine"]
    results: dict[str, Json] = data["servers"]
    lines = [
        f"# Simple Chat benchmark ({'quick' if data['quick'] else 'full'} run, {data['started']})",
        "",
        f"{machine_line(m)}. Server pinned to core {CORES['server']}, load generator"
        f" to core {CORES['loadgen']}, loopback TCP, a fresh server for every phase.",
        f"Command: `{data['command']}`",
        "",
        summary(results),
        "",
        "Figures: the ramp's best passing step; server CPU from /proc/PID/stat over that step"
        " (sending and draining) divided by its deliveries; latency from the send timestamp"
        " embedded in each message to its receipt. ⚑ marks a figure where the load generator was"
        " more than 85% busy (its own limit, not the server's).",
        "",
        "## Phases",
        "",
        *[
            f"- `{p.name}`: {p.title}"
            + (f" (ours with `{' '.join(p.server_flags)}`)" if p.server_flags else "")
            for p in PHASES
            if any(p.name in r.get("phases", {}) for r in results.values())
        ],
        "",
        "## Details",
        "",
    ]
    for key, res in results.items():
        lines.append(details(key, res))
    prof = data.get("profile")
    if prof:
        lines += ["## Profile of ours under load (py-spy)", ""]
        if prof.get("error"):
            lines.append(f"not taken: {prof['error']}")
        else:
            r = dig(prof, "loadgen", "result") or {}
            lines.append(
                f"{prof['samples']} samples at {num(prof.get('rate'), ',.0f')} deliveries/s target"
                f" for {prof['seconds']} s (delivered {num(r.get('delivered_per_s'), ',.0f')}/s,"
                f" p99 {num(r.get('p99_ms'), '.1f', ' ms')}); raw stacks: `{prof['raw']}`"
            )
            titles = {
                "self": "Self time by function (the sampled frame itself):",
                "self_lines": "Self time by line:",
                "inclusive": "Inclusive time by function (the frame or anything it called):",
            }
            for kind, title in titles.items():
                lines += ["", title, "", "| share | function |", "|---|---|"]
                lines += [f"| {s}% | `{f}` |" for f, s in prof.get(kind, [])]
        lines.append("")
    return "\n".join(lines)
