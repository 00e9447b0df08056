"""The test camera for pytest: starts tests/support/rtsp_server.py with the system Python.

The server needs Debian's GStreamer RTSP server packages. When they are missing the tests
that need the server FAIL with the install command; they never skip.

:class:`RtspTestServer` can freeze the server (SIGSTOP: the socket stays open, no data
flows, as with a camera whose encoder hangs), kill it, and restart it on the same port.
It is also used by bench/video.py.
"""

from __future__ import annotations

import asyncio
import functools
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from video.source import StreamReader

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
INSTALL_HINT = (
    "the test camera needs Debian's GStreamer RTSP server for /usr/bin/python3: run "
    "./scripts/setup.sh --test, or: sudo apt-get install gir1.2-gst-rtsp-server-1.0 "
    "python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly "
    "gstreamer1.0-plugins-bad"
)


class RtspServerMissing(RuntimeError):
    pass


@functools.cache
def rtsp_server_problem() -> str | None:
    """None when the server can run here, else what is missing."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found; {INSTALL_HINT}"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "import sys; sys.exit(0 if Gst.ElementFactory.find('x264enc') and "
        "Gst.ElementFactory.find('rtph264pay') and Gst.ElementFactory.find('videotestsrc') and "
        "Gst.ElementFactory.find('x265enc') and Gst.ElementFactory.find('voaacenc') else 3)"
    )
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30, check=False
    )
    if result.returncode != 0:
        return INSTALL_HINT
    return None


def require_rtsp_server() -> None:
    problem = rtsp_server_problem()
    if problem is not None:
        pytest.fail(problem, pytrace=False)


class RtspTestServer:
    """One server process serving ``rtsp://127.0.0.1:PORT/cam``."""

    def __init__(
        self,
        *,
        width: int = 320,
        height: int = 240,
        fps: int = 15,
        bitrate_kbps: int = 500,
        keyint: int = 15,
        port: int = 0,
        pattern: str = "ball",
    ) -> None:
        self.args = [
            f"--pattern={pattern}",
            f"--width={width}",
            f"--height={height}",
            f"--fps={fps}",
            f"--bitrate-kbps={bitrate_kbps}",
            f"--keyint={keyint}",
        ]
        self.port = port
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 20.0) -> str:
        problem = rtsp_server_problem()
        if problem is not None:
            raise RtspServerMissing(problem)
        deadline = time.monotonic() + timeout
        while True:
            line = self._spawn(deadline)
            if line.startswith("URL "):
                self.url = line.split()[1]
                self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
                return self.url
            # The port may still be held by the killed server's connections: retry.
            self.stop()
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP test server did not start: {line!r}")
            time.sleep(0.2)

    def _spawn(self, deadline: float) -> str:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), f"--port={self.port}", *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            if not sel.select(max(0.1, deadline - time.monotonic())):
                raise RuntimeError("RTSP test server printed no URL in time")
        return self.process.stdout.readline().decode().strip()

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a power cut would: no RTSP TEARDOWN, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, timeout: float = 20.0) -> str:
        """Start again on the same port."""
        self.kill()
        return self.start(timeout)

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a frozen server cannot see its stdin close
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self.process = None

    def __enter__(self) -> RtspTestServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RtspServerFactory:
    def __init__(self) -> None:
        self.servers: list[RtspTestServer] = []

    def __call__(self, **options: Any) -> RtspTestServer:
        require_rtsp_server()
        server = RtspTestServer(**options)
        self.servers.append(server)
        server.start()
        return server


@pytest.fixture
def rtsp_server_factory() -> Iterator[RtspServerFactory]:
    factory = RtspServerFactory()
    yield factory
    for server in factory.servers:
        server.stop()


@pytest.fixture
def rtsp_server(rtsp_server_factory: RtspServerFactory) -> RtspTestServer:
    """A small, fast stream: 320x240, 15 fps, a keyframe every second."""
    return rtsp_server_factory()


async def until(source: StreamReader, condition: Callable[[], bool], within_s: float) -> None:
    """Wait, packet by packet, until ``condition()`` holds; TimeoutError after ``within_s``.

    Synchronises on the arrival of packets (an event), not on sleeps.
    """
    _, sub = source.subscribe(loop=asyncio.get_running_loop())
    try:
        async with asyncio.timeout(within_s):
            while not condition():
                if await sub.next() is None:
                    raise RuntimeError("the source stopped")
    finally:
        sub.close()
