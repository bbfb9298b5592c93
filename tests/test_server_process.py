"""`python chat_server.py` as a real child process: options, environment, errors, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import re
import signal
import socket
import sys
import time
from dataclasses import fields

import pytest
import tornado.options
from tornado.httpclient import AsyncHTTPClient

from chat.config import Settings
from chat.options import define_options, from_options
from chat_server import GC_YOUNG_OBJECTS, parse_command_line, settle_heap
from tests.helpers import RawClient
from tests.serverproc import (
    EXIT_TIMEOUT_S,
    Spawn,
    WsConnect,
    assert_clean,
    assert_one_line_error,
    free_port,
    healthz,
    reachable,
    run,
)

pytestmark = pytest.mark.subprocess


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The child's event loop: uvloop (the `fast` extra) or asyncio's own."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop", reason="the `fast` extra is not installed")
        return {}
    return {"CHAT_NO_UVLOOP": "1"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.gen_test(timeout=30)
async def test_signal_closes_every_connection_with_1001_and_exits_0(
    spawn: Spawn, ws: WsConnect, loop_env: dict[str, str], signum: int
) -> None:
    """SIGTERM or SIGINT closes joined and unjoined connections with 1001, then exits 0."""
    port = free_port()
    child = spawn(f"--port={port}", ready_port=port, **loop_env)
    watcher = await ws(port)
    member = await ws(port)
    await member.join("alice")
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/healthz")
    assert json.loads(response.body)["connections"] == 2

    sent = time.monotonic()
    child.proc.send_signal(signum)
    codes = await asyncio.gather(watcher.closed(EXIT_TIMEOUT_S), member.closed(EXIT_TIMEOUT_S))
    assert list(codes) == [1001, 1001]
    while child.proc.poll() is None:
        assert time.monotonic() - sent < EXIT_TIMEOUT_S, "still running after the signal"
        await asyncio.sleep(0.05)
    assert child.proc.returncode == 0, child.stderr
    assert_clean(child.stderr)


@pytest.mark.gen_test(timeout=30)
async def test_a_client_ignoring_the_close_does_not_hold_the_shutdown(
    spawn: Spawn, ws: WsConnect, loop_env: dict[str, str]
) -> None:
    """A client that never answers the 1001 close delays exit only by --shutdown-grace."""
    port = free_port()
    grace_s = 0.5
    child = spawn(f"--port={port}", f"--shutdown-grace={grace_s}", ready_port=port, **loop_env)
    mute = await RawClient.connect(port)  # never reads, never answers
    try:
        polite = await ws(port)
        await polite.join("bob")

        sent = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        assert await polite.closed(EXIT_TIMEOUT_S) == 1001
        while child.proc.poll() is None:
            assert time.monotonic() - sent < grace_s + EXIT_TIMEOUT_S, "held by the mute client"
            await asyncio.sleep(0.05)
        assert child.proc.returncode == 0, child.stderr
        assert_clean(child.stderr)
        assert await mute.close_code() == 1001  # it was sent, just never answered
    finally:
        mute.abort()


def test_help_lists_every_setting_with_its_unit_and_env_name() -> None:
    """--help names every Settings field's flag, help text, unit and CHAT_ variable."""
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    text = result.stdout + result.stderr  # tornado.options prints help to stderr
    entries: dict[str, str] = {}
    flag = None
    for line in text.splitlines():
        match = re.match(r"^  --([\w-]+)", line)
        if match:
            flag = match.group(1)
            entries[flag] = line[match.end():]
        elif flag is not None and line.startswith("    "):
            entries[flag] += " " + line
        else:
            flag = None
    for field in fields(Settings):
        name = field.name.replace("_", "-")
        assert name in entries, f"--{name} is not in --help"
        entry = " ".join(entries[name].split())
        help_text = field.metadata.get("help", "")
        assert help_text, f"the setting {field.name} has no help text"
        assert " ".join(help_text.split()) in entry, entry
        assert f"(env CHAT_{field.name.upper()})" in entry, entry
        unit = field.metadata.get("unit", "")
        if unit:
            assert f"[{unit}]" in entry, entry


def test_chat_port_sets_the_port(spawn: Spawn) -> None:
    """CHAT_PORT alone decides the port."""
    port = free_port()
    child = spawn(ready_port=port, CHAT_PORT=str(port))
    assert child.stop() == 0
    assert_clean(child.stderr)


def test_the_command_line_beats_the_environment(spawn: Spawn) -> None:
    """--port wins over CHAT_PORT."""
    env_port, flag_port = free_port(), free_port()
    child = spawn("--port", str(flag_port), ready_port=flag_port, CHAT_PORT=str(env_port))
    assert not reachable("127.0.0.1", env_port)
    assert child.stop() == 0
    assert_clean(child.stderr)


def test_the_command_line_overrides_a_bad_environment_value(spawn: Spawn) -> None:
    """A CHAT_ value that cannot be read is no error when the command line sets that option."""
    port = free_port()
    child = spawn(f"--port={port}", ready_port=port, CHAT_PORT="not-a-port")
    assert child.stop() == 0
    assert_clean(child.stderr)


@pytest.mark.parametrize("form", ["--port N", "--port=N", "--xheaders --port N"])
def test_option_values_follow_a_space_or_an_equals_sign(spawn: Spawn, form: str) -> None:
    """`--port 8000` and `--port=8000` both set the port; a boolean flag takes no value."""
    port = free_port()
    child = spawn(*form.replace("N", str(port)).split(), ready_port=port)
    assert child.stop() == 0
    assert_clean(child.stderr)


@pytest.mark.parametrize(("value", "on"), [("off", False), ("no", False), ("false", False),
                                           ("0", False), ("on", True), ("YES", True)])
def test_a_boolean_option_reads_on_and_off(value: str, on: bool) -> None:
    """`--xheaders=off` and `--guests off` turn them off (tornado.options alone reads any word
    but false as on, and stops at a word after a boolean option)."""
    parser = tornado.options.OptionParser()
    define_options(parser, environ={})
    parse_command_line(parser, ["chat_server.py", f"--xheaders={value}", "--compression", value,
                                "--guests", value, "--port", "9000"])
    settings = from_options(parser)
    assert (settings.xheaders, settings.compression, settings.guests) == (on, on, on)
    assert settings.port == 9000


BAD_VALUES = [  # (command-line words and CHAT_ variables, what the error line must name)
    ("--xheaders=maybe", ["--xheaders", "maybe", "on or off"]),
    ("--compression maybe", ["'maybe'", "is not an option"]),
    ("CHAT_XHEADERS=maybe", ["CHAT_XHEADERS", "maybe"]),
    ("--rate-limit=-1", ["--rate-limit", "-1"]),
    ("--rate-limit -1", ["--rate-limit", "-1"]),
    ("CHAT_MAX_MESSAGE_BYTES=abc", ["CHAT_MAX_MESSAGE_BYTES", "abc"]),
    ("CHAT_RATE_LIMIT=-1", ["rate-limit", "-1"]),
    ("--ping-interval=10 --ping-timeout=30", ["--ping-timeout", "30"]),
    ("--max-message-bytes=100", ["--max-message-bytes", "100", "1024"]),
    ("--header-timeout=0", ["--header-timeout", "0", "more than 0"]),
    ("CHAT_IDLE_TIMEOUT=-1", ["idle-timeout", "-1"]),
    ("--max-unfinished-per-ip=-1", ["--max-unfinished-per-ip", "-1"]),
    ("--port=70000", ["--port", "70000"]),
    ("--presence-max-members=0", ["--presence-max-members", "0", "2000"]),
    ("--presence-max-members=2001", ["--presence-max-members", "2001", "2000"]),
    ("--notice-interval=-1", ["--notice-interval", "-1"]),
    ("--join-grace=-1", ["--join-grace", "-1", "86400"]),
    ("--notices-max-members=-1", ["--notices-max-members", "-1"]),
    ("--unread-max=0", ["--unread-max", "0", "10000"]),
    ("--edit-window=-1", ["--edit-window", "-1", "0 or more"]),
    ("--max-reactions=0", ["--max-reactions", "0", "100"]),
    ("CHAT_AWAY_AFTER=0.5", ["away-after", "0.5", "86400"]),
    ("--avatars=robohash", ["--avatars", "robohash", "initials or gravatar"]),
    ("--port=abc", ["abc"]),
    ("--rate-limit=fast", ["fast"]),
    ("--rate-limit", ["rate"]),
]


@pytest.mark.parametrize(("case", "named"), BAD_VALUES, ids=[case for case, _ in BAD_VALUES])
def test_a_bad_value_is_one_line_on_stderr_and_exit_2(case: str, named: list[str]) -> None:
    """A bad setting, on the command line or in CHAT_*, is one error line and exit status 2."""
    words = case.split()
    env = dict(w.split("=", 1) for w in words if w.startswith("CHAT_"))
    result = run(*(w for w in words if not w.startswith("CHAT_")), **env)
    assert result.returncode == 2, result.stderr
    line = assert_one_line_error(result)
    for word in named:
        assert word in line, line


def test_a_port_in_use_is_one_line_on_stderr_and_a_failure() -> None:
    """Another listener on the port makes the server exit non-zero with one error line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(f"--port={port}")
    assert result.returncode != 0
    line = assert_one_line_error(result)
    assert str(port) in line, line


def other_local_addresses() -> list[str]:
    """Addresses of this machine, other than 127.0.0.1, that a socket can bind."""
    candidates = ["::1"]
    if sys.platform.startswith("linux"):
        candidates.append("127.0.0.2")  # all of 127/8 is local on Linux
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # picks the outgoing interface; sends nothing
        candidates.append(probe.getsockname()[0])
    found = []
    for address in dict.fromkeys(candidates):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family) as sock:
                sock.bind((address, 0))
        except OSError:
            continue
        if address != "127.0.0.1":
            found.append(address)
    return found


def test_the_default_address_serves_only_127_0_0_1(spawn: Spawn) -> None:
    """Without --address the server answers on 127.0.0.1 and on no other local address."""
    port = free_port()
    child = spawn(f"--port={port}", ready_port=port)  # ready: /healthz answers on 127.0.0.1
    for address in other_local_addresses():
        assert not reachable(address, port), f"reachable on {address}"
    assert child.stop() == 0
    assert_clean(child.stderr)


def test_address_0_0_0_0_serves_the_other_local_addresses(spawn: Spawn) -> None:
    """--address=0.0.0.0 is reachable on every local IPv4 address (the probe above works)."""
    others = [a for a in other_local_addresses() if ":" not in a]
    if not others:
        pytest.skip("this machine has no local IPv4 address besides 127.0.0.1")
    port = free_port()
    child = spawn(f"--port={port}", "--address=0.0.0.0", ready_port=port)
    for address in others:
        assert healthz(port, address) is not None, f"not served on {address}"
    assert child.stop() == 0
    assert_clean(child.stderr)


async def joined_raw(port: int, name: str) -> RawClient:
    """A raw client that joined `general` as `name` and read the join's replies."""
    client = await RawClient.connect(port)
    client.send_text({"type": "join", "username": name})
    while True:
        opcode, payload = await client.read_frame()
        assert opcode == 0x1, (opcode, payload)
        if json.loads(payload)["type"] == "history":
            return client


@pytest.mark.gen_test(timeout=30)
async def test_nothing_follows_the_close_frame_on_shutdown(spawn: Spawn) -> None:
    """On SIGTERM no data frame (such as another member's leave notice) follows the 1001 close."""
    port = free_port()
    child = spawn(f"--port={port}", "--shutdown-grace=1", ready_port=port)
    reader = await joined_raw(port, "alice")  # reads on after the close, never answers it
    leavers = [await joined_raw(port, f"bob{i}") for i in range(3)]
    try:
        child.proc.send_signal(signal.SIGTERM)
        for leaver in leavers:  # each drops its socket at the close: alice's room sees leaves
            assert await leaver.close_code() == 1001
            leaver.abort()
        assert await reader.close_code() == 1001
        after = []
        while (frame := await reader.read_frame())[0] != -1:
            after.append(frame)
        assert after == []
        assert child.proc.wait(EXIT_TIMEOUT_S) == 0, child.stderr
    finally:
        reader.abort()
        for leaver in leavers:
            leaver.abort()


def test_settle_heap_freezes_the_start_up_heap_and_widens_the_young_generation() -> None:
    """After settle_heap nothing from start-up is left to collect, and the young generation
    is collected every GC_YOUNG_OBJECTS objects, the older ones as Python's defaults say."""
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() > frozen
        assert gc.get_threshold() == (GC_YOUNG_OBJECTS, *before[1:])
    finally:
        if not frozen:  # the suite's own freeze (tests/conftest.py) stays
            gc.unfreeze()
        gc.set_threshold(*before)
