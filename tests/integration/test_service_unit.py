"""The service (docs/operations.md): the units ``threshold service install`` writes pass
``systemd-analyze verify`` and score at most 2.0 on ``systemd-analyze security``; the gateway
speaks the notify protocol to a real AF_UNIX datagram socket: READY once it serves, watchdog
pings while it runs, STOPPING on SIGTERM, and a clean exit."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.app.provision import init_gateway
from tests.support.cli import REPO, run_cli
from tests.support.service import Keys, set_config

SYSTEMD_HINT = "systemd-analyze is missing: apt-get install systemd (scripts/setup.sh --test)"


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(SYSTEMD_HINT)
    return found


@pytest.fixture
def units(tmp_path: Path) -> Path:
    result = run_cli(
        "service",
        "install",
        "--unit-dir",
        str(tmp_path / "system"),
        "--sysusers-dir",
        str(tmp_path / "sysusers"),
        "--relay",
        "--executable",
        sys.executable,
    )
    assert result.returncode == 0, result.stderr
    return tmp_path / "system"


def test_units_verify(units: Path) -> None:
    analyze = _analyze()
    result = subprocess.run(
        [analyze, "verify", "--man=no", "threshold.service", "threshold-relay.service"],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # not even a warning


@pytest.mark.parametrize("unit", ["threshold.service", "threshold-relay.service"])
def test_units_are_hardened(units: Path, unit: str) -> None:
    result = subprocess.run(
        [_analyze(), "security", "--offline=yes", "--no-pager", unit],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) <= 2.0, result.stdout
    text = (units / unit).read_text()
    for line in ("CapabilityBoundingSet=\n", "ProtectSystem=strict\n", "NoNewPrivileges=yes\n"):
        assert line in text


def test_install_refuses_to_overwrite(units: Path, tmp_path: Path) -> None:
    before = (units / "threshold.service").read_text()
    result = run_cli(
        "service", "install", "--unit-dir", str(units), "--sysusers-dir", str(tmp_path / "su")
    )
    assert result.returncode == 2
    assert "exists" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (units / "threshold.service").read_text() == before


def test_the_gateway_tells_systemd_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    config = init_gateway(
        tmp_path / "gw", owner_pub=Keys().owner_pub, gateway_id="gw-test", bind="127.0.0.1:0"
    ).config_path
    set_config(config, "api", "mdns", "false")  # nothing leaves loopback
    address = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(address))
    sock.settimeout(60)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(address),
        "WATCHDOG_USEC": "400000",  # ping every 0.2 s
        "THRESHOLD_LOG_FORMAT": "json",  # as the unit sets it, for journald
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        messages: list[str] = []
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        ready = next(m for m in messages if "READY=1" in m)
        assert "STATUS=serving gw-test at https://" in ready
        pings = 0
        while pings < 3:
            if sock.recv(4096) == b"WATCHDOG=1":
                pings += 1
        proc.send_signal(signal.SIGTERM)
        while b"STOPPING=1" not in sock.recv(4096):
            pass
        assert proc.wait(timeout=60) == 0
        assert proc.stderr is not None
        lines = proc.stderr.read().decode().splitlines()
        events = [json.loads(line) for line in lines]  # one JSON object per line, each
        assert {"time", "level", "logger", "message"} <= set(events[0])
        assert any(e["message"].startswith("api: listening on https://") for e in events)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        sock.close()
        assert proc.stderr is not None
        proc.stderr.close()
