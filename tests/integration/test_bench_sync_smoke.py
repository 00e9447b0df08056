"""Smoke test: the sync benchmark runs at a small size and prints its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_sync_small() -> None:
    result = subprocess.run(
        [sys.executable, "bench/sync.py", "--entries", "1500"],
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
    assert figures["backlog_entries"] == figures["uploaded"] == 1500
    for name in (
        "catchup_s",
        "entries_per_s",
        "reference_post_entries_per_s",
        "vs_reference",
        "gateway_peak_rss_mb",
        "wire_bytes_per_entry",
        "plain_bytes_per_entry",
        "relay_ingest_cpu_s",
    ):
        assert figures[name] > 0, name
    # Every entry is padded to at least the 512-byte class and sealed (48 bytes more).
    assert figures["wire_bytes_per_entry"] > 560 > figures["plain_bytes_per_entry"]
