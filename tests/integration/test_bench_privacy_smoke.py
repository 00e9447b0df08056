"""Smoke test: the privacy benchmark runs at a small size and prints its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_privacy_small() -> None:
    result = subprocess.run(
        [sys.executable, "bench/privacy.py", "--intervals", "8", "--interval", "1.5"],
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
    assert figures["slots"] == 4
    assert abs(figures["bytes_per_day"] - figures["bytes_per_exchange"] * 1440) <= 1440
    # Four sealed leaves of at least 560 bytes each, and the requests around them.
    assert figures["bytes_per_exchange"] > 4 * 560
    assert figures["busy_vs_idle_bytes"] == 1.0
    assert figures["busy_vs_idle_distance"]["sizes"] == 0
    assert figures["queued_entries"] > 0
    assert figures["queue_delay_p99_s"] > 0
    assert 0 <= figures["busy_vs_idle_distance"]["times_ks"] <= 1
