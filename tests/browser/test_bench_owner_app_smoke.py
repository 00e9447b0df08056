"""Smoke test: the owner app's benchmark runs at a small size and prints its one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_owner_app_small() -> None:
    result = subprocess.run(
        [sys.executable, "bench/owner_app.py", "--visits", "5", "--browser-visits", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["visits"] == 5
    assert figures["notify_ms_p99"] >= figures["notify_ms_p50"] > 0
    assert figures["browser_visits"] == 3
    assert figures["notify_browser_ms_p99"] >= figures["notify_browser_ms_p50"] > 0
    assert figures["app_first_paint_ms"] > 0
    assert 0 < figures["first_visit_kb"] <= 300
