"""SVG plots of a run's figures, drawn with matplotlib beside its tables (issue 19's "Show it").

    .venv/bin/python -m bench.plots bench/results/STAMP-quick.json [...] [--out docs/images]

- `latency`: p50 and p99 against the offered rate (the ramp's steps), ours and the Go server's;
- `scaling`: the highest sustained deliveries/s against the number of nodes, and N times the
  first row's per node (what perfect scaling would give);
- `handshake`: each server's CPU per new WebSocket connection (the idle phase's 10,000).

A suite writes the plots its data holds next to its report when matplotlib is installed (the
test extra has it); without it, it says so and writes none.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.env import Json, dig, log

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HANDSHAKE_TARGET_US = 150  # issue 19: CPU per new connection on the 2-core machine
SIZE_IN = (6.4, 3.6)  # inches: a page's width in docs/, legible without zooming
STYLES = {
    "ours": ("Simple Chat", "-"),
    "go": ("Go tutorial server", "--"),
    "tornado": ("Tornado alone", ":"),  # bench/floors.py
    "asyncio": ("asyncio alone", "-."),
}


def _svg(draw: Callable[[Axes], None]) -> str:
    """The SVG of a figure that `draw(axes)` fills; text kept as text (searchable, small)."""
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "simple-chat"}):
        fig, ax = plt.subplots(figsize=SIZE_IN)
        try:
            draw(ax)
            ax.grid(True, alpha=0.3)
            fig.tight_layout()
            out = io.StringIO()
            fig.savefig(out, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    return out.getvalue()


def latency(pair: Json) -> str | None:
    """p50/p99 against the offered rate, per server with ramp steps; None without any."""
    series = {
        key: steps
        for key in STYLES
        if (steps := dig(pair, "servers", key, "phases", "ramp", "loadgen", "steps"))
    }
    if not series:
        return None

    def draw(ax: Axes) -> None:
        from matplotlib.ticker import FuncFormatter

        for key, steps in series.items():
            title, dash = STYLES[key]
            # The passing steps make the line; a failing one (a backlog: its latency is the
            # queue's) is a lone mark above it, so the bisection's steps do not zig-zag.
            passed = sorted((s for s in steps if s.get("pass", True)),
                            key=lambda s: s["offered_per_s"])
            failed = [s for s in steps if not s.get("pass", True)]
            for figure, marker in (("p50_ms", "o"), ("p99_ms", "^")):
                name = f"{title} {figure.split('_')[0]}"
                line = ax.plot([s["offered_per_s"] for s in passed],
                               [s[figure] for s in passed], dash, marker=marker, label=name)
                if failed:  # no legend entry each: one below says what hollow marks are
                    ax.plot([s["offered_per_s"] for s in failed], [s[figure] for s in failed],
                            linestyle="none", marker=marker, fillstyle="none",
                            color=line[0].get_color(), gid=f"{key}-{figure}-failing")
        if any(not s.get("pass", True) for steps in series.values() for s in steps):
            ax.plot([], [], linestyle="none", marker="o", fillstyle="none", color="grey",
                    label="hollow: a failing step")
        ax.set(xscale="log", yscale="log", xlabel="offered deliveries/s",
               ylabel="latency, ms", title="Latency against load (ramp steps)")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:,.0f}k"))
        # Between the decades only 2 and 5 are labelled: all of them would overlap.
        ax.xaxis.set_minor_formatter(FuncFormatter(
            lambda x, _: f"{x / 1000:,.0f}k" if f"{x:.0e}"[0] in "25" else ""))
        # Beside the axes, not over the lines: with four servers it has nine entries.
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _svg(draw)


def scaling(data: Json) -> str | None:
    """Sustained deliveries/s against nodes, with perfect scaling from the first row."""
    points = [
        (int(n), rate)
        for n, phases in data.get("by_nodes", {}).items()
        if isinstance(rate := dig(phases, "ramp", "loadgen", "result", "delivered_per_s"), int)
    ]
    if not points:
        return None
    first_n, first_rate = points[0]

    def draw(ax: Axes) -> None:
        nodes = [n for n, _ in points]
        ax.plot(nodes, [r for _, r in points], "-o", label="measured")
        ax.plot(nodes, [first_rate * n / first_n for n in nodes], ":",
                label="N × the first row's per node")
        ax.set(xlabel="nodes", ylabel="highest sustained deliveries/s",
               title="One cluster on one host: throughput against nodes", xticks=nodes)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="small")

    return _svg(draw)


def handshake(pair: Json) -> str | None:
    """CPU per new connection, per server with an idle phase."""
    bars = {
        STYLES[key][0]: us
        for key in STYLES
        if isinstance(
            us := dig(pair, "servers", key, "phases", "idle", "loadgen", "server_handshake_cpu_us"),
            (int, float),
        )
    }
    if not bars:
        return None

    def draw(ax: Axes) -> None:
        ax.bar_label(ax.bar(list(bars), list(bars.values())), fmt="%.0f µs")
        ax.axhline(HANDSHAKE_TARGET_US, linestyle="--", color="grey",
                   label=f"issue 19's target on 2 cores, {HANDSHAKE_TARGET_US} µs")
        ax.margins(y=0.12)  # room for the labels above the bars
        ax.legend(fontsize="x-small")
        ax.set(ylabel="server CPU per connection, µs",
               title="CPU per new WebSocket connection (10,000 connecting)")

    return _svg(draw)


PLOTS: dict[str, Callable[[Json], str | None]] = {
    "latency": latency,
    "scaling": scaling,
    "handshake": handshake,
}


def write_plots(data: Json, out: Path, stem: str) -> list[Path]:
    """Each plot `data` holds, as out/STEM-NAME.svg; none (and a line saying so) without
    matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log("no plots: matplotlib is not installed (pip install matplotlib)")
        return []
    written = []
    for name, plot in PLOTS.items():
        svg = plot(data)
        if svg is not None:
            path = out / f"{stem}-{name}.svg"
            path.write_text(svg)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("results", nargs="+", type=Path, help="a run's .json")
    ap.add_argument("--out", type=Path, default=None, help="where (default: beside each .json)")
    args = ap.parse_args(argv)
    for result in args.results:
        out = args.out or result.parent
        out.mkdir(parents=True, exist_ok=True)
        for path in write_plots(json.loads(result.read_text()), out, result.stem):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
