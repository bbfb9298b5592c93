"""Builds the Go load generator and the Go tutorial server into bench/bin/, offline.

The tutorial server's source is not part of this repository: it is the `main.go` of the Go
tutorial this project ports (bench/README.md, "The Go tutorial server"), found through
`--seed-src` or the environment variable BENCH_SEED_SRC.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.env import BIN, LOADGEN_SRC, BenchError

SEED_SRC_ENV = "BENCH_SEED_SRC"
NO_GO = "no Go toolchain: apt-get install -y golang-go golang-github-gorilla-websocket-dev"


def go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise BenchError(NO_GO)
    return go


def run_checked(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


def prebuilt(out: Path) -> bool:
    """Whether to use `out` as it is: no Go toolchain here, and a static build there (an
    offline folder's, bench/offline.py)."""
    return shutil.which("go") is None and os.access(out, os.X_OK)


def build_loadgen() -> Path:
    out = BIN / "loadgen"
    if prebuilt(out):
        return out
    BIN.mkdir(parents=True, exist_ok=True)
    # No -trimpath: it rebuilds the whole standard library (~20 s of CPU on a fresh machine)
    # instead of using the toolchain's prebuilt one, and only changes paths in the binary.
    env = dict(os.environ, GO111MODULE="on", GOPROXY="off", GOFLAGS="-mod=mod", CGO_ENABLED="0")
    run_checked([go_binary(), "build", "-o", str(out), "."], LOADGEN_SRC, env)
    return out


def seed_source(given: Path | None) -> Path | None:
    """The tutorial server's main.go from `--seed-src` or $BENCH_SEED_SRC (a file or the folder
    holding it, or holding src/main.go); None where neither names one."""
    if given is None:
        from_env = os.environ.get(SEED_SRC_ENV, "")
        if not from_env:
            return None
        given = Path(from_env)
    for candidate in (given, given / "main.go", given / "src" / "main.go"):
        if candidate.is_file():
            return candidate
    return given


def missing_seed_reason(given: Path | None) -> str:
    """Why the Go tutorial server cannot be built: where its source was looked for."""
    if given is None:
        return (
            f"no Go tutorial server source: pass --seed-src PATH/main.go or set {SEED_SRC_ENV}"
            " (the tutorial's server; see bench/README.md)"
        )
    return f"no Go tutorial server at {given} (--seed-src or {SEED_SRC_ENV})"


def build_seed(seed_src: Path | None) -> Path:
    """Builds the tutorial server from a patched temporary copy (its port is fixed at 8000)."""
    if prebuilt(BIN / "seed-chat"):
        return BIN / "seed-chat"
    if seed_src is None or not seed_src.is_file():
        raise BenchError(missing_seed_reason(seed_src))
    source = seed_src.read_text()
    listen = 'http.ListenAndServe(":8000", nil)'
    imports = '"net/http"\n'
    if listen not in source or imports not in source:
        raise BenchError(f"{seed_src} is not the tutorial server this suite knows how to patch")
    source = source.replace(
        listen, 'http.ListenAndServe("127.0.0.1:"+os.Getenv("SEED_PORT"), nil)', 1
    ).replace(imports, imports + '\t"os"\n', 1)
    out = BIN / "seed-chat"
    BIN.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="", CGO_ENABLED="0"
    )
    with tempfile.TemporaryDirectory(prefix="seed-build-") as tmp:
        (Path(tmp) / "main.go").write_text(source)
        run_checked([go_binary(), "build", "-o", str(out), "main.go"], Path(tmp), env)
    return out
