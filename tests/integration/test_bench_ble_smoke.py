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
        [sys.executable, str(BENCH), "--smoke"], capture_output=True, text=True, timeout=240
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
    # The second vendor, against the Nuki in the same run.
    assert figures["switchbot_cold_unlock_ms"] > 0
    assert figures["switchbot_warm_unlock_ms"] > 0
    assert figures["switchbot_vs_nuki_warm"] > 0
    assert figures["switchbot_protocol_minimum"] == 7
    assert figures["switchbot_round_trips_per_unlock"] >= 7
    # The radio time: the event-driven day is a fraction of the polled one (each poll holds
    # the lock connected for the idle disconnect at least).
    assert figures["connected_s_per_day"] > 0
    assert figures["polling_s_per_day"] > figures["connected_s_per_day"]
    assert 0 < figures["connected_vs_polling"] < 1
    assert figures["flag_to_status_ms"] > 0
