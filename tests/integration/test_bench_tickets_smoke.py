"""bench/tickets.py runs and prints one JSON line with its figures (no timing asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "raw_verify_per_s",
    "paseto_verify_per_s",
    "ticket_verify_per_s",
    "pyseto_verify_per_s",
    "paseto_vs_raw",
    "ticket_vs_raw3",
    "paseto_vs_pyseto",
}


def test_bench_prints_one_json_line() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tickets.py"), "--seconds", "0.02", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures.keys() >= KEYS
    assert all(figures[k] > 0 for k in KEYS)
