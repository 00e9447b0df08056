"""bench/access.py runs and prints one JSON line with every figure (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "access.py"


def test_bench_access_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--opens", "3", "--duration", "1", "--floor-rounds", "2"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    for key in (
        "open_overhead_p50_ms",
        "open_overhead_p99_ms",
        "floor_ms",
        "overhead_vs_floor",
        "bogus_rejected_per_s",
        "legit_grant_p99_ms",
    ):
        assert isinstance(figures[key], (int, float)), key
    assert figures["opens"] == 3
    assert figures["bogus_other"] == 0
