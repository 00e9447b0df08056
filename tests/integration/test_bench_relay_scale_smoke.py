"""bench/relay_scale.py runs on a throw-away PostgreSQL and prints one JSON line with every
figure (no timing asserted; the bench itself checks every entry was stored exactly once)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "relay_scale.py"


def test_bench_relay_scale_smoke() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--gateways",
            "12",
            "--entries",
            "20",
            "--batch",
            "10",
            "--workers",
            "1,2",
            "--no-durable",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["entries"] == 12 * 20
    assert set(figures["entries_per_s"]) == {"1", "2"}
    assert set(figures["upload_ms_p99"]) == {"1", "2"}
    assert figures["copy_entries_per_s"] > 0
    assert 0 < figures["relay_vs_copy"] == max(figures["relay_vs_copy_by_workers"].values())
    cpu = figures["cpu_ms_per_upload"]
    assert set(cpu) == {"1", "2"}
    assert all(set(split) == {"relay", "postgres", "client"} for split in cpu.values())
    # Two dozen uploads, each verified, hashed and stored: the relay spent measurable CPU.
    assert all(split["relay"] > 0 for split in cpu.values())
