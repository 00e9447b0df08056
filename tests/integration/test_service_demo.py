"""``threshold demo``: every flow of the gateway demo, as a user runs it, well under a minute."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_runs_every_flow_and_verifies_the_log(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_demo("--dir", str(tmp_path / "gw"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    out = result.stdout
    for line in (
        "1. offline delivery with a package code",
        "refused, 403 uses_exhausted",
        "refused, 403 wrong_gateway",
        "refused, 403 outside_schedule",
        "awaiting_approval",
        "owner: signed approval sent; session open",
        "threshold audit verify",
        "demo passed",
        "camera: demo-camera.mp4",
        "camera: 4 clips recorded",
        "every entry filmed (3/3), hashes match",
    ):
        assert line in out, line
    assert out.count("matches the file") == 4
    assert "FAIL" not in out
    assert "Traceback" not in result.stderr
    for name in ("gateway.key", "owner.key", "tls.key", "threshold.db"):
        assert stat.S_IMODE(os.stat(tmp_path / "gw" / name).st_mode) == 0o600, name
    clips = sorted((tmp_path / "gw" / "clips").glob("*.mp4"))
    assert len(clips) == 4
    # A kept directory is reused, its log growing.
    again = run_demo("--dir", str(tmp_path / "gw"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing the gateway" in again.stdout


def test_demo_without_a_camera_still_passes(tmp_path: Path) -> None:
    result = run_demo("--no-camera")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no camera: policy.allow_without_camera = true" in result.stdout
    assert "clips recorded" not in result.stdout
    assert "demo passed" in result.stdout


def test_run_refuses_a_camera_file_that_does_not_exist(tmp_path: Path) -> None:
    config = tmp_path / "threshold.toml"
    config.write_text("")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            str(config),
            "--camera",
            str(tmp_path / "no-such-video.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no such video file" in result.stderr
    assert "Traceback" not in result.stderr
