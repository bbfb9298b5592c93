"""The wheel `pip install .` builds: installed without a clone, `simple-chat` serves the chat."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.helpers import ChatClient
from tests.serverproc import ROOT, Child, assert_clean, child_env, free_port

pytestmark = pytest.mark.subprocess

BUILD_TIMEOUT_S = 120.0  # pip builds and installs offline, ~5 s each; CI machines are shared
# What a build reads is the tree as a clone has it: no checkout state, caches or old builds
# (setuptools never empties build/, so a stale one would hide a file the wheel now lacks), and
# not bench/, which is no part of the package and keeps its binaries and results there.
NOT_SOURCE = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__",
                                    "node_modules", "chat.db*", "test-output", "bench")
SCRIPT_SRC = re.compile(r'<script (?:defer|type="module") src="(/static/[^"?]+)\?v=')


def pip(*args: str | Path) -> None:
    """Run this interpreter's pip, offline; fail the test with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *map(str, args)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of this checkout, as `pip install .` builds it."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    # No build isolation: setuptools and wheel come from this environment (the test extra),
    # so the test downloads nothing.
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", work, source)
    [built] = work.glob("simple_chat-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed: its bin/ folder."""
    env = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True).strip())
    # The dependencies are this environment's, read after the wheel's own files: a path in a
    # .pth file is only appended, and .pth files there (an editable install's) are not run.
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    pip("--python", python, "install", "--no-deps", "--no-index", wheel)
    return env / "bin"


def test_wheel_holds_the_page_and_the_confusables_table(wheel: Path) -> None:
    """The wheel carries static/, templates/, chat/data/*.txt and the simple-chat command."""
    names = set(zipfile.ZipFile(wheel).namelist())
    page = {f"handlers/{path.relative_to(ROOT)}"
            for folder in ("static", "templates") for path in (ROOT / folder).rglob("*")
            if path.is_file()}
    assert "handlers/templates/index.html" in page
    assert page - names == set()
    assert "chat/data/confusables.txt" in names
    [entry_points] = (name for name in names if name.endswith(".dist-info/entry_points.txt"))
    commands = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "simple-chat = chat_server:main" in commands


@pytest.mark.gen_test(timeout=60)
async def test_installed_command_serves_the_page_static_files_and_chat(
    installed: Path, tmp_path: Path
) -> None:
    """The installed `simple-chat`, run outside the checkout, serves the page, scripts and chat."""
    env = {k: v for k, v in child_env().items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = subprocess.check_output(
        [installed / "python", "-c", "import chat_server; print(chat_server.__file__)"],
        cwd=tmp_path, env=env, text=True)
    assert Path(where.strip()).is_relative_to(installed.parent), where  # not the checkout's
    port = free_port()
    child = Child([f"--port={port}", "--db", ":memory:"], env, tmp_path / "stderr.log",
                  command=[str(installed / "simple-chat")], cwd=tmp_path)
    try:
        child.wait_ready(port)
        http = AsyncHTTPClient()
        page = await http.fetch(f"http://127.0.0.1:{port}/")
        assert page.headers["Content-Type"].startswith("text/html")
        scripts = SCRIPT_SRC.findall(page.body.decode())
        assert "/static/js/main.js" in scripts
        for path in scripts:
            response = await http.fetch(f"http://127.0.0.1:{port}{path}")
            assert response.body == (ROOT / path.lstrip("/")).read_bytes(), path

        alice = await ChatClient.connect(f"ws://127.0.0.1:{port}/ws")
        try:
            welcome = await alice.join("alice")
            assert welcome["username"] == "alice"
            await alice.send({"type": "message", "text": "installed"})
            message = await alice.recv_type("message")
            assert (message["username"], message["message"]) == ("alice", "installed")
        finally:
            alice.close()
        assert child.stop() == 0
        assert_clean(child.stderr)
    finally:
        child.kill()
