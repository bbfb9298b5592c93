"""The benchmark's smoke run (`bench/run.py --smoke`): it builds, starts and measures."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench import rejoin, send_threads, signin
from bench import run as bench_run
from bench.build import build_loadgen, prebuilt
from bench.env import Json
from bench.offline import libraries, requirements
from bench.plots import handshake, latency, scaling, write_plots
from bench.report import phase_record
from bench.servers import (
    FLOORS,
    ServerSpec,
    our_server_spec,
    run_loadgen,
    start_server,
    stop_server,
)
from tests.pgserver import PostgresCluster, find_postgres_bin
from tests.serverproc import ROOT

pytestmark = pytest.mark.bench

# The load generator's build (~4 s of CPU on a fresh machine, cached after) plus, where its
# source is given, the Go tutorial server's (~14 s), plus ~5 s of load per server; generous
# for a shared 2-core machine.
SMOKE_TIMEOUT_S = 180
# The scaling scenario at two nodes with 20 clients each: two fresh clusters (Redis, PostgreSQL,
# two nodes; ~10 s to start each) and a quick ramp (25 s of budget) and fixed phase (5 s).
SCALING_TIMEOUT_S = 240
# The steady phase's flags (bench/phases.py) at a size that takes a few seconds.
STEADY_SMALL = ("-mode steady -clients 20 -senders 2 -ramp-start 1000 -ramp-step 0.3"
                " -ramp-bisect 0 -ramp-budget 0.5 -rate 1000 -warmup 0.2 -duration 1"
                " -window 0.5 -drain 2")


def go_toolchain() -> None:
    """Skips where Go is missing, but fails in CI (scripts/bootstrap test installs it)."""
    if shutil.which("go") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the Go toolchain is missing: scripts/bootstrap test installs golang-go")
        pytest.skip("the Go toolchain is missing; run scripts/bootstrap test (CI fails instead)")


def test_smoke_run_delivers_every_message() -> None:
    """The smoke run builds the load generator and measures our server: deliveries, no loss."""
    go_toolchain()
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--python", sys.executable],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke ours: " in done.stdout, done.stdout + done.stderr
    assert " 0 lost" in done.stdout
    if os.environ.get("BENCH_SEED_SRC"):
        # The Go tutorial server's half runs only where its source is given.
        assert "smoke go: " in done.stdout, done.stdout + done.stderr


def test_search_bench_builds_migrates_searches_and_appends(tmp_path: Path) -> None:
    """bench/search_bench.py runs end to end on a small history and prints every table."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.search_bench", "--messages", "3000", "--repeat", "2",
         "--seconds", "0.3", "--writers", "2", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "index built over 3,000 stored messages" in done.stdout
    assert "| common word (rank 3) | 20+ |" in done.stdout
    assert "| common word, one room |" in done.stdout
    assert "| off | 2 |" in done.stdout


def test_store_bench_measures_appends_with_the_search_index_on_and_off(tmp_path: Path) -> None:
    """`bench/store_bench.py --search-index both` (the issue's command) prints one table with
    a row per index setting and writer count, on stores made with and without the index."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.store_bench", "--search-index", "both", "--seconds", "0.3",
         "--writers", "2", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "| search index | writers | messages/s |" in done.stdout
    for row in ("| on | 1 |", "| on | 2 |", "| off | 1 |", "| off | 2 |"):
        assert row in done.stdout, done.stdout


@pytest.mark.parametrize("path", ["bare", "outbox"])
def test_send_threads_bench_measures_each_thread_count(path: str) -> None:
    """`bench/send_threads.py` (bare sends, or the server's Outbox) prints a row per thread
    count with every send made whole."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.send_threads", "--connections", "30", "--rounds", "45",
         "--threads", "1,2,3", "--repeat", "1", *(["--outbox"] if path == "outbox" else [])],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and
            line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["1", "2", "3"], done.stdout
    assert all(float(row.split("|")[2].replace(",", "")) > 0 for row in rows)


@pytest.mark.postgres
def test_store_bench_measures_the_search_index_on_postgresql(
        postgres_server: PostgresCluster) -> None:
    """The same command with `--db postgresql://`: each store a schema of its own, the index
    off being the generated column dropped."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.store_bench", "--search-index", "both", "--seconds", "0.3",
         "--writers", "2", "--db", postgres_server.url()],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    for row in ("| on | 1 |", "| on | 2 |", "| off | 1 |", "| off | 2 |"):
        assert row in done.stdout, done.stdout


def test_steady_mode_reports_a_p99_per_window_after_its_ramp(tmp_path: Path) -> None:
    """The load generator's steady mode ramps, then measures windows on the same connections;
    the report gives each window's p99."""
    go_toolchain()
    spec = our_server_spec(Path(sys.executable), [])
    assert spec is not None
    run = start_server(spec, tmp_path / "server.log", core=None)
    try:
        out = run_loadgen(build_loadgen(), run, tuple(STEADY_SMALL.split()), 60, core=None,
                          server_core="-1")
    finally:
        stop_server(run)
    assert out.get("exit_code") == 0, out
    assert len(out["window_p99_ms"]) == 2 and all(p > 0 for p in out["window_p99_ms"])
    assert out["others"]["lost"] == 0 and out["others"]["delivered"] > 0
    assert out["ramp"]["steps"], "no ramp step ran before the windows"
    notes = phase_record("steady", {"loadgen": out})["notes"]
    assert notes.startswith("p99 per window ") and notes.endswith("; lost 0")


@pytest.mark.parametrize("kind", sorted(FLOORS))
def test_a_reference_server_answers_the_load_generator_as_the_go_server_does(
    kind: str, tmp_path: Path
) -> None:
    """bench/floors.py's servers upgrade, broadcast each frame (long ones too) and lose none."""
    go_toolchain()
    command = [sys.executable, "-m", "bench.floors", kind, "--port", "{port}"]
    run = start_server(ServerSpec(kind, FLOORS[kind], command, ROOT), tmp_path / "s.log",
                       core=None)
    try:
        loadgen = build_loadgen()
        fixed = "-mode fixed -clients 20 -senders 2 -rate 2000 -warmup 0.2 -duration 1 -drain 2"
        out = run_loadgen(loadgen, run, (*fixed.split(), "-size", "300"), 60, core=None,
                          server_core="-1")
        idle = "-mode idle -clients 30 -idle-msgs 1 -settle 0.2"
        quiet = run_loadgen(loadgen, run, tuple(idle.split()), 60, core=None, server_core="-1")
    finally:
        stop_server(run)
    assert out["result"]["lost"] == 0 and out["result"]["delivered"] > 0, out
    assert quiet["connections"] == 30 and quiet["all_delivered"], quiet
    assert "server_handshake_cpu_us" in quiet  # its /proc figures, as for ours (too few to be >0)


def test_an_idle_phase_notes_its_last_deliveries_and_the_server_cpu_per_message() -> None:
    """The idle row gives the last delivery's spread and the server's CPU for each message."""
    steps = [{"server_cpu_s": 0.11}, {"server_cpu_s": 0.13}, {"server_cpu_s": None}]
    lg: Json = {"connections": 10000, "last_delivery_ms": [123.3, 149.9, 121.9], "steps": steps}
    notes = phase_record("idle", {"loadgen": lg})["notes"]
    assert "last delivery 122–150 ms" in notes
    assert "server CPU per message to all 110–130 ms" in notes


def test_a_phase_with_our_counters_notes_frames_per_socket_write() -> None:
    """Our server's /metrics over a phase's load gives its row frames per write; Go's has none."""
    counters = {"chat_deliveries_total": 1000.0, "chat_socket_writes_total": 250.0}
    ours = phase_record("ramp", {"loadgen": {"result": {}}, "counters": counters})
    assert "4.00 frames per socket write" in ours["notes"]
    go = phase_record("ramp", {"loadgen": {"result": {}}, "counters": None})
    assert "frames per socket write" not in go["notes"]


def test_the_scaling_scenario_spreads_clients_over_nodes_and_measures_each(
        tmp_path: Path) -> None:
    """`--nodes 2` with small counts: a ramp and a fixed rate over two nodes on Redis and
    PostgreSQL, the clients on both, nothing lost, nothing logged, the table's row filled."""
    go_toolchain()
    if shutil.which("redis-server") is None or find_postgres_bin() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server or PostgreSQL is missing: scripts/bootstrap test installs"
                        " them")
        pytest.skip("redis-server or PostgreSQL is missing")
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--nodes", "2", "--quick", "--clients-per-node", "20",
         "--rate-per-node", "500", "--python", sys.executable],
        cwd=ROOT, env={**os.environ, "BENCH_RESULTS": str(tmp_path)}, capture_output=True,
        text=True, timeout=SCALING_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    [result] = tmp_path.glob("*-scaling-quick.json")
    phases = json.loads(result.read_text())["by_nodes"]["2"]
    for phase in ("ramp", "fixed"):
        assert "error" not in phases[phase], phases[phase]
        assert phases[phase]["exit_codes"] == {"node1": 0, "node2": 0, "redis": 0}
        assert all(v["count"] == 0 for v in phases[phase]["log_issues"].values()), phases[phase]
    fixed = phases["fixed"]["loadgen"]["result"]
    assert fixed["lost"] == 0 and fixed["delivered"] == fixed["expected"] > 0
    assert set(fixed["procs"]) == {"node1", "node2", "redis"}
    # Both nodes carried clients and senders: each spent CPU delivering.
    assert all(fixed["procs"][node]["cpu_s"] > 0 for node in ("node1", "node2")), fixed
    assert phases["fixed"]["procs"]["pg"]["cpu_s"] > 0
    # Each node's /metrics during the load: its deliveries, and about as many socket writes
    # (at 500/s each message goes alone; a few writes carry other frames: notices, replies).
    for node in ("node1", "node2"):
        counters = phases["fixed"]["counters"][node]
        writes, deliveries = (counters["chat_socket_writes_total"],
                              counters["chat_deliveries_total"])
        assert deliveries > 0 and 0.5 * deliveries < writes < 1.5 * deliveries, counters
    assert "frames per socket write" in done.stdout
    assert phases["ramp"]["loadgen"]["result"]["delivered_per_s"] > 0
    assert "| 2 " in done.stdout and "efficiency" in done.stdout
    assert [p.name.split("-")[-1] for p in tmp_path.glob("*-scaling-quick-*.svg")] == [
        "scaling.svg"]


def test_the_device_script_is_bash_and_asks_the_suite_only_what_it_knows() -> None:
    """bench/device.sh parses as bash, and each bench/run.py and bench.send_threads command in
    it parses with that program's own options."""
    script = ROOT / "bench" / "device.sh"
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    text = script.read_text().replace("\\\n", " ").replace("$threads", "4")
    commands = [shlex.split(line.split(".log", 1)[1].lstrip('"'))
                for line in text.splitlines() if line.strip().startswith("step ") and
                ("bench/run.py" in line or "bench.send_threads" in line)]
    runs = [c[c.index("bench/run.py") + 1:] for c in commands if "bench/run.py" in c]
    sends = [c[c.index("bench.send_threads") + 1:] for c in commands if "bench.send_threads" in c]
    assert len(runs) == 3 and len(sends) == 2, commands
    for args in runs:
        bench_run.parser().parse_args(args)
    for args in sends:
        with pytest.raises(SystemExit) as exit_info:  # --help after them: parsed, then exits 0
            send_threads.main([*args, "--help"])
        assert exit_info.value.code == 0


def test_the_offline_folder_carries_what_setup_cfg_asks_and_no_c_library(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """bench/offline.py's parts that need no network: the requirements are setup.cfg's
    (comments dropped), the libraries to copy leave glibc's out, and a Go build is used as it
    is where there is no Go toolchain."""
    reqs = requirements()
    assert "tornado>=6.4,<6.7" in reqs and "uvloop>=0.19" in reqs
    assert not any("#" in r or not r for r in reqs)
    redis = shutil.which("redis-server")
    if redis is not None:
        names = {lib.name for lib in libraries(Path(redis))}
        assert names and not any(n.startswith(("libc.so", "libm.so", "ld-linux")) for n in names)
    build = tmp_path / "loadgen"
    build.write_text("#!/bin/sh\n")
    assert not prebuilt(build)  # not executable
    build.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert prebuilt(build)  # no `go` on PATH: the static build there serves


def ramp_steps(*points: tuple[int, float, float]) -> Json:
    return {"loadgen": {"steps": [{"offered_per_s": rate, "p50_ms": p50, "p99_ms": p99,
                                   "pass": p99 < 500} for rate, p50, p99 in points]}}


def test_the_plots_draw_what_a_run_holds_and_nothing_it_lacks(tmp_path: Path) -> None:
    """Latency against load for both servers, throughput against nodes, CPU per connection:
    SVGs whose text names each series; a run without the figures gets no plot."""
    pair: Json = {"servers": {
        "ours": {"phases": {"ramp": ramp_steps((40_000, 13.7, 29.4), (80_000, 60.1, 131.0),
                                               (160_000, 700.5, 1093.6)),
                            "idle": {"loadgen": {"server_handshake_cpu_us": 1133}}}},
        "go": {"phases": {"ramp": ramp_steps((40_000, 9.8, 20.4))}},
    }}
    svg = latency(pair)
    assert svg is not None and svg.startswith("<?xml")
    for label in ("Simple Chat p50", "Simple Chat p99", "Go tutorial server p99",
                  "offered deliveries/s", "hollow: a failing step", "50k", "100k",
                  'id="ours-p99_ms-failing"'):
        assert label in svg
    assert "go-p99_ms-failing" not in svg  # Go's one step passed
    assert handshake(pair) is not None and scaling(pair) is None
    nodes: Json = {"by_nodes": {
        str(n): {"ramp": {"loadgen": {"result": {"delivered_per_s": rate}}}}
        for n, rate in ((1, 476_000), (2, 359_000), (4, 644_000))}}
    svg = scaling(nodes)
    assert svg is not None and "N × the first row" in svg and "nodes" in svg
    assert latency({"servers": {"ours": {"error": "did not start"}}}) is None
    written = write_plots(pair, tmp_path, "run")
    assert sorted(p.name for p in written) == ["run-handshake.svg", "run-latency.svg"]
    assert all(p.read_text().rstrip().endswith("</svg>") for p in written)


def test_the_signin_storm_signs_each_connection_in_with_a_session_of_its_own(
        tmp_path: Path) -> None:
    """bench/signin.py's storm: every upgrade carries one of the seeded sessions, and each
    session, last used an hour ago, is touched by its own upgrade."""
    go_toolchain()
    db = tmp_path / "signin.db"
    tokens, _ = asyncio.run(signin.seed(str(db), 30))
    assert len(set(tokens)) == 30
    with sqlite3.connect(db) as conn:
        seeded = {row[0] for row in conn.execute("SELECT last_seen_ts FROM sessions")}
    assert len(seeded) == 1
    cookies = tmp_path / "cookies"
    cookies.write_text("".join(f"chat_session={token}\n" for token in tokens))
    out = signin.storm(build_loadgen(), str(db), 30, cookies, tmp_path, pinned=False)
    # Sampled from /proc in 10 ms ticks: 30 upgrades may take less than one.
    assert out["connections"] == 30 and out["server_handshake_cpu_us"] >= 0
    with sqlite3.connect(db) as conn:
        touched = [row[0] for row in conn.execute("SELECT last_seen_ts FROM sessions")]
    assert len(touched) == 30 and min(touched) > seeded.pop()


def test_the_rejoin_storm_answers_every_client_s_joins_of_its_rooms(tmp_path: Path) -> None:
    """bench/rejoin.py's storm: each signed-in client rejoins every seeded room with `since`,
    and each join is answered to the end (its `unread`) without an error."""
    go_toolchain()
    db = tmp_path / "rejoin.db"
    tokens, accounts = asyncio.run(signin.seed(str(db), 30, 15))
    assert len(accounts) == 15
    asyncio.run(rejoin.seed_rooms(str(db), accounts, 2, 20, 3))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), min(last_read), max(last_read) FROM read_marks"
                            ).fetchone() == (30, 17, 17)
        assert conn.execute("SELECT count(*) FROM room_members").fetchone() == (30,)
    cookies, greet = tmp_path / "cookies", tmp_path / "greet"
    cookies.write_text("".join(f"chat_session={token}\n" for token in tokens))
    greet.write_text(rejoin.greetings(2, 20, 3))
    assert greet.read_text().count('"since":17') == 2
    out = rejoin.rejoin_storm(build_loadgen(), str(db), 30, cookies, greet, tmp_path,
                              pinned=False)
    assert out["greeted"] == 30 and out["greet_errors"] == 0
    # /proc counts 10 ms ticks: the upgrades alone may take less than one, not the rejoins.
    assert out["server_ready_cpu_us"] >= out["server_handshake_cpu_us"] >= 0
    assert out["server_ready_cpu_us"] > 0
