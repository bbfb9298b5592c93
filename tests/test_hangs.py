"""A hanging test fails after the per-test timeout and names the await it hung on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.serverproc import ROOT

HANGING = '''
import asyncio
import pytest

@pytest.mark.gen_test(timeout=0.5)
async def test_cleanup_never_ends():
    try:
        await asyncio.sleep(60)
    finally:
        await asyncio.get_running_loop().create_future()  # the await it hangs on

def test_next():
    pass
'''


def test_a_hang_fails_its_test_with_the_pending_await_and_the_suite_goes_on(
        tmp_path: Path) -> None:
    """A coroutine that swallows gen_test's cancellation fails at the timeout, with its stack."""
    (tmp_path / "test_hanging.py").write_text(HANGING)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_hanging.py"), "-p", "tests.hangs",
         "-p", "no:cacheprovider", "--timeout=3", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 failed, 1 passed" in out
    assert "Timeout (>3.0s) from pytest-timeout" in out
    pending = out.split("tasks pending at the timeout", 1)[1]
    assert "test_cleanup_never_ends" in pending
    assert "# the await it hangs on" in pending
