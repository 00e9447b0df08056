"""The test camera stops by itself: when its stdin closes and when its parent dies."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.rtsp import SERVER_SCRIPT, SYSTEM_PYTHON, RtspTestServer, require_rtsp_server

pytestmark = pytest.mark.rtsp


def test_closing_stdin_stops_it_cleanly() -> None:
    require_rtsp_server()
    server = RtspTestServer()
    server.start()
    process = server.process
    assert process is not None
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(10) == 0  # exited by itself, not killed
    server.stop()


def test_it_exits_when_its_parent_dies() -> None:
    require_rtsp_server()
    # A shell starts the server in the background (stdin kept open by a sleeping writer),
    # prints its pid, then exits: the server is orphaned and must notice.
    script = (
        f"sleep 30 2>/dev/null | {SYSTEM_PYTHON} {SERVER_SCRIPT} --port=0 >/dev/null 2>&1 & "
        "echo $!; sleep 1"
    )
    shell = subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, timeout=20, check=True
    )
    pid = int(shell.stdout.split()[0])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        # /proc has no event to wait on; a bounded poll of a process we did not start
        # by pid is the only way to observe its exit.
        time.sleep(0.05)
    stat = Path(f"/proc/{pid}/stat")
    alive = stat.exists()
    if alive and stat.read_text().split()[2] != "Z":
        os.kill(pid, 9)
        pytest.fail("the RTSP test server outlived its parent")
