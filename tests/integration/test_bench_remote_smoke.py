"""Smoke test: the remote-reach benchmark runs at a small size and prints its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_remote_small() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/remote.py",
            "--megabytes",
            "4",
            "--frames",
            "2",
            "--push-visits",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["megabytes"] == 4
    assert figures["frames"] == 2
    for name in (
        "tunnel_mbps",
        "splice_mbps",
        "relay_cpu_s_per_gb",
        "splice_cpu_s_per_gb",
        "splice_4k_cpu_s_per_gb",
        "relay_vs_splice_cpu",
        "first_frame_ms_relay",
        "first_frame_ms_lan",
        "first_frame_vs_lan",
    ):
        assert figures[name] > 0, name
    assert figures["push_ms_p99"] > 0
    assert figures["push_vs_reference"] > 0
