"""bench/ble.py runs and prints one JSON line with the promised figures (not a timing test:
the figures are only checked for shape and sense)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ble.py"


def test_ble_benchmark_prints_one_json_line() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["cold_unlock_ms"] > 0
    assert figures["warm_unlock_ms"] > 0
    assert figures["warm_vs_cold"] > 0
    assert figures["protocol_minimum"] == 6
    assert figures["round_trips_per_unlock"] >= 6
