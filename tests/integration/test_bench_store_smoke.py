"""Smoke test: the store benchmark runs at a small size and prints its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.cli import REPO


def test_bench_store_small() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/store.py",
            "--entries",
            "3000",
            "--appends",
            "200",
            "--samples",
            "20",
            "--rounds",
            "2",
            "--verify-rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert set(figures) == {
        "durable_appends_per_s",
        "raw_sqlite_commits_per_s",
        "durable_vs_raw",
        "batched_appends_per_s",
        "entries",
        "proof_ms_at_1m",
        "checkpoint_ms_at_1m",
        "db_bytes_per_entry",
        "verify_processes",
        "verify_entries_per_s",
        "verify_1proc_entries_per_s",
        "raw_sha256_entries_per_s",
        "verify_vs_raw",
        "verify_1proc_vs_raw",
    }
    assert figures["entries"] == 3000
    assert all(value > 0 for value in figures.values())
