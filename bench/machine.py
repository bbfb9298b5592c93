"""What the machine and the processes on it are doing, read from /proc: CPU, memory, quiet."""

from __future__ import annotations

import collections
import os
import platform
import resource
import subprocess
import time
from pathlib import Path

from bench.env import Json, log

NOFILE_WANTED = 65536  # descriptors: the idle phase holds ~10,100 per process
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in ((NOFILE_WANTED, max(hard, NOFILE_WANTED)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, want)
            return want[0]
        except (ValueError, OSError):
            continue
    return soft


def proc_sample(pid: int) -> Json | None:
    """CPU seconds (utime+stime) and RSS in KiB of a process, from /proc/PID/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = int(fields[21]) * PAGE_KIB
    return {"cpu_s": round(cpu, 3), "rss_kib": rss}


def _stat_fields(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    i = raw.rfind(")")
    if i < 0:
        return None
    return [raw[raw.index("(") + 1 : i], *raw[i + 2 :].split()]


def other_cpu() -> dict[int, tuple[str, int]]:
    """CPU ticks (utime+stime) of every process that is not this suite's.

    This process and all its descendants (servers, load generator, py-spy) and kernel threads
    (whose softirq work is the benchmark's own traffic) are left out: what remains is other
    work on the machine competing with the measurement. Children's time (cutime) is left out:
    a long-lived child reaped during a phase would count its whole life; so a process that
    starts and ends between two snapshots is missed.
    """
    parent: dict[int, int] = {}
    ticks: dict[int, tuple[str, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = _stat_fields(name)
        if f is None or len(f) < 17:
            continue
        pid, ppid = int(name), int(f[2])
        parent[pid] = ppid
        if pid == 2 or ppid == 2:
            continue
        ticks[pid] = (f[0], int(f[12]) + int(f[13]))  # utime + stime, not reaped children
    me = os.getpid()

    def ours(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            if pid == me:
                return True
            pid = parent.get(pid, 0)
            seen += 1
        return False

    return {pid: v for pid, v in ticks.items() if not ours(pid)}


def other_cpu_delta(
    before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], seconds: float
) -> Json:
    """Cores' worth of other processes' CPU between two other_cpu() snapshots."""
    use: collections.Counter[str] = collections.Counter()
    for pid, (comm, t) in after.items():
        d = t - before.get(pid, (comm, 0))[1]
        if d > 0:
            use[f"{comm}[{pid}]"] += d
    total = sum(use.values()) / CLK_TCK
    top = [[k, round(v / CLK_TCK / max(seconds, 1e-3), 3)] for k, v in use.most_common(3)]
    return {"cores": round(total / max(seconds, 1e-3), 3), "top": top}


def machine_busy_s() -> float:
    """CPU seconds all cores spent on processes (user, nice, system) and stolen, since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, steal = (int(fields[i]) for i in (1, 2, 3, 8))
    return (user + nice + system + steal) / CLK_TCK


def own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


class Contention:
    """Other work on the machine while a phase runs: all CPU time less this suite's own.

    The suite's own is this process, its children that were waited for (the load generator)
    and the running server (or servers: `extra_pids`, e.g. a cluster's other node and Redis).
    Softirq time (where much of loopback traffic is processed) is left out on both sides. A
    per-process scan names the largest other consumers.
    """

    def __init__(self, server_pid: int | None, extra_pids: tuple[int, ...] = ()) -> None:
        self.server_pid = server_pid
        self.extra_pids = extra_pids
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_s()
        self.own0 = own_cpu_s()
        self.server0 = self._server()
        self.procs0 = other_cpu()

    def _server(self) -> float:
        total = 0.0
        for pid in (self.server_pid, *self.extra_pids):
            sample = proc_sample(pid) if pid is not None else None
            total += float(sample["cpu_s"]) if sample else 0.0
        return total

    def result(self) -> Json:
        seconds = max(time.monotonic() - self.t0, 1e-3)
        others = (
            (machine_busy_s() - self.busy0)
            - (own_cpu_s() - self.own0)
            - (self._server() - self.server0)
        )
        top = other_cpu_delta(self.procs0, other_cpu(), seconds)["top"]
        return {"cores": round(max(others, 0.0) / seconds, 3), "top": top}


def wait_quiet(
    limit: float, max_wait: float, server_pid: int | None, extra_pids: tuple[int, ...] = ()
) -> Json:
    """Waits (up to max_wait s) until other processes use less than `limit` cores."""
    start = time.monotonic()
    while True:
        meter = Contention(server_pid, extra_pids)
        time.sleep(0.5)
        last = meter.result()
        waited = time.monotonic() - start
        if last["cores"] < limit or waited >= max_wait:
            return {**last, "waited_s": round(waited, 1)}
        log(f"machine busy ({last['cores']:.2f} cores; largest: {last['top']}); waiting")


def machine() -> Json:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    go = subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "go": go.strip(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }
