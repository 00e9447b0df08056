"""Smoke test: the Web Push benchmark runs at a small size and prints its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_push_small() -> None:
    result = subprocess.run(
        [sys.executable, "bench/push.py", "--visits", "5"],
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
    assert figures["visits"] == 5
    assert figures["payload_bytes"] == 615  # every push one size (the padded ciphertext)
    for name in ("push_ms_p50", "push_ms_p99", "reference_ms_p99", "push_vs_reference"):
        assert figures[name] > 0, name
    assert figures["push_ms_p99"] >= figures["push_ms_p50"]
