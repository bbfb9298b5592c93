"""A folder to run the benchmark where there is no network (bench/README.md, "Offline").

    .venv/bin/python -m bench.offline DIR [--python-version 3.12] [--seed-src PATH] [--archive]

Made here, where the package registry is in reach, for a machine of the same architecture
(x86-64 Linux) that has Python but neither network nor the other programs:

- `wheels/`: the server's dependencies (setup.cfg's install_requires and its `fast` extra) for
  the target Python, manylinux wheels only (pip download);
- `root/`: Debian's redis-server and PostgreSQL's server programs, in their own layout under
  `root/usr/` (PostgreSQL finds its share/ and lib/ relative to its bin/), and `root/lib/` the
  shared libraries they load that are not the C library's;
- `bin/`: the load generator and, with `--seed-src`, the Go tutorial server: static builds;
- `run.sh`: there, from the repository's root, `bash DIR/run.sh bench/run.py --nodes 1,2,4,8`
  installs the wheels into a folder on PYTHONPATH (pip --target: no venv module needed, and
  the machine's own packages stay in reach), makes `.venv/bin/python` a wrapper of python3
  unless there is a .venv (bench/run.py starts the servers with it), puts `wrap/` on PATH
  (redis-server, initdb and pg_ctl run the folder's copies with the folder's libraries, and
  nothing else gets them), copies the Go builds to bench/bin/, and runs the command with
  python3.
"""

from __future__ import annotations

import argparse
import configparser
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.build import build_loadgen, build_seed, seed_source
from bench.env import ROOT, BenchError, log
from tests.pgserver import find_postgres_bin

# pip matches a manylinux tag exactly: every glibc level a wheel may be built for, newest last.
PLATFORMS = ["manylinux2014_x86_64", *(f"manylinux_2_{n}_x86_64" for n in range(17, 40))]
# The PostgreSQL programs the benchmark runs (tests/pgserver.py): the rest are clients.
PG_PROGRAMS = ("postgres", "initdb", "pg_ctl")
# PostgreSQL's JIT: left out (the server then runs without it).
NO_JIT = ("llvmjit*", "bitcode")
# Libraries every Linux has (glibc's own): never copied, the machine's must serve.
GLIBC = re.compile(r"^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv)\b")

RUN_SH = """#!/usr/bin/env bash
# Runs a benchmark command from the repository's root with what this folder carries.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
site="${OFFLINE_SITE:-/tmp/simple-chat-site}"
if [ ! -d "$site/tornado" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" \\
        "$here"/wheels/*.whl
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
if [ ! -e .venv ]; then  # where bench/run.py looks for the server's Python
    mkdir -p .venv/bin
    printf '#!/bin/sh\\nexec python3 "$@"\\n' > .venv/bin/python
    chmod +x .venv/bin/python
fi
# PostgreSQL refuses to run as root: tests/pgserver.py runs it as the user postgres.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home postgres
fi
export PATH="$here/wrap:$PATH"
mkdir -p bench/bin && cp "$here"/bin/* bench/bin/
exec python3 "$@"
"""


def requirements() -> list[str]:
    """setup.cfg's install_requires and `fast` extra, one requirement a line."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    text = cfg["options"]["install_requires"] + "\n" + cfg["options.extras_require"]["fast"]
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def download_wheels(reqs: list[str], folder: Path, python_version: str) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    argv = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
            "--python-version", python_version, "--implementation", "cp", *platforms,
            "-d", str(folder), *reqs]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"pip download failed:\n{done.stdout}{done.stderr}")


def libraries(program: Path) -> list[Path]:
    """The shared libraries `program` loads (ldd), the C library's left out."""
    done = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=False)
    found = []
    for line in done.stdout.splitlines():
        name, _, rest = line.strip().partition(" => ")
        path = rest.split(" (")[0].strip()
        if rest and path.startswith("/") and not GLIBC.match(name):
            found.append(Path(path))
    return found


def copy_programs(root: Path) -> None:
    """redis-server and PostgreSQL's server in their layout under root/usr, libraries in
    root/lib."""
    redis = shutil.which("redis-server")
    pg_bin = find_postgres_bin()
    if redis is None or pg_bin is None:
        raise BenchError("redis-server and PostgreSQL must be installed here: scripts/bootstrap"
                         " test installs them")
    programs = [Path(redis).resolve()]
    (root / "usr" / "bin").mkdir(parents=True)
    shutil.copy2(programs[0], root / "usr" / "bin" / "redis-server")
    version = pg_bin.parent  # /usr/lib/postgresql/15
    target = root / version.relative_to("/")
    (target / "bin").mkdir(parents=True)
    for name in PG_PROGRAMS:
        shutil.copy2(pg_bin / name, target / "bin" / name)
        programs.append(pg_bin / name)
    # plpgsql, the text search dictionaries, the encodings; not the JIT (LLVM: ~130 MiB with
    # its libraries, and the benchmark's statements are far too short to be compiled)
    shutil.copytree(version / "lib", target / "lib", ignore=shutil.ignore_patterns(*NO_JIT))
    share = Path("/usr/share/postgresql") / version.name
    shutil.copytree(share, root / share.relative_to("/"))
    programs += sorted((target / "lib").glob("*.so"))
    libs = root / "lib"
    libs.mkdir()
    for lib in {lib for program in programs for lib in libraries(program)}:
        shutil.copy2(lib, libs / lib.name)


# A program on PATH that runs the folder's copy with the folder's libraries: only these get
# LD_LIBRARY_PATH (the machine's own Python and its extensions keep the machine's libraries).
WRAPPER = """#!/bin/sh
here="$(cd "$(dirname "$0")/.." && pwd)"
LD_LIBRARY_PATH="$here/root/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}" exec "$here/{real}" "$@"
"""


def write_wrappers(folder: Path) -> None:
    """wrap/redis-server, wrap/initdb and wrap/pg_ctl (tests/pgserver.py finds initdb on PATH
    and runs pg_ctl beside it; they start the real postgres beside themselves)."""
    wrap = folder / "wrap"
    wrap.mkdir()
    programs = [folder / "root" / "usr" / "bin" / "redis-server"]
    programs += [p for p in (folder / "root").glob("usr/lib/postgresql/*/bin/*")
                 if p.name != "postgres"]
    for program in programs:
        script = wrap / program.name
        script.write_text(WRAPPER.format(real=program.relative_to(folder)))
        script.chmod(0o755)


def make(folder: Path, python_version: str, seed_src: Path | None) -> None:
    if folder.exists():
        raise BenchError(f"{folder} exists: give a new folder")
    folder.mkdir(parents=True)
    reqs = requirements()
    (folder / "requirements.txt").write_text("\n".join(reqs) + "\n")
    log(f"downloading wheels for Python {python_version}")
    download_wheels(reqs, folder / "wheels", python_version)
    log("copying redis-server and PostgreSQL")
    copy_programs(folder / "root")
    write_wrappers(folder)
    log("building the load generator (and the tutorial server if given)")
    (folder / "bin").mkdir()
    shutil.copy2(build_loadgen(), folder / "bin" / "loadgen")
    seed = seed_source(seed_src)
    if seed is not None:
        shutil.copy2(build_seed(seed), folder / "bin" / "seed-chat")
    (folder / "run.sh").write_text(RUN_SH)
    (folder / "run.sh").chmod(0o755)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    log(f"{folder}: {size / 2**20:.1f} MiB")


def archive(folder: Path) -> Path:
    """FOLDER.tar.xz beside it: one file to carry (the device takes 64 MiB in all), unpacked
    there with `python3 -m tarfile -e FOLDER.tar.xz /tmp/`."""
    out = folder.with_name(folder.name + ".tar.xz")
    with tarfile.open(out, "w:xz") as tar:
        tar.add(folder, arcname=folder.name)
    log(f"{out}: {out.stat().st_size / 2**20:.1f} MiB")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--python-version", default="3.12", help="the target's Python (default 3.12)")
    ap.add_argument("--seed-src", type=Path, default=None,
                    help="the Go tutorial server's main.go (default: $BENCH_SEED_SRC)")
    ap.add_argument("--archive", action="store_true", help="also write FOLDER.tar.xz")
    args = ap.parse_args(argv)
    make(args.folder.resolve(), args.python_version, args.seed_src)
    if args.archive:
        archive(args.folder.resolve())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as err:
        print(f"bench: {err}", file=sys.stderr)
        sys.exit(1)
