"""SIGKILL a process mid-append, again and again: the log stays whole and keeps every index
the child reported as written.

50 kills by default; set THRESHOLD_CRASH_KILLS to run more (the store was run with 200).
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from store.verify import verify_log
from tests.support.cli import REPO, run_cli

KILLS = int(os.environ.get("THRESHOLD_CRASH_KILLS", "50"))


def _kill_one_child(db: Path, seed_hex: str, rng: random.Random) -> int | None:
    """Run the child until a random moment after its first commit; return the last index."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.fault.crash_child", str(db), seed_hex],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    assert child.stdout is not None
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the child committed nothing within 60 s"
        first = child.stdout.readline()  # the child has committed once
        assert first, f"the child wrote nothing: {child.stderr.read() if child.stderr else ''}"
        time.sleep(rng.uniform(0, 0.04))
    finally:
        child.send_signal(signal.SIGKILL)
        remaining, errors = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, errors
    # A kill can cut the last line short: only lines ending in a newline were reported.
    complete = (first + remaining).split("\n")[:-1]
    indexes = [int(line) for line in complete]
    return indexes[-1] if indexes else None


def test_sigkill_during_appends_loses_nothing_reported(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    db = tmp_path / "crash.db"
    seed_hex = os.urandom(32).hex()
    highest = -1
    for kill in range(KILLS):
        last = _kill_one_child(db, seed_hex, rng)
        assert last is not None, f"kill {kill} (seed {seed}): no index reported"
        assert last > highest, f"kill {kill} (seed {seed}): index went back"
        highest = last
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            report = verify_log(conn)
            assert report.ok, f"kill {kill} (seed {seed}): {report}"
            assert (
                conn.execute("SELECT COUNT(*) FROM audit_entry WHERE idx = ?", (last,)).fetchone()[
                    0
                ]
                == 1
            ), f"kill {kill} (seed {seed}): reported index {last} lost"
        finally:
            conn.close()
    result = run_cli("audit", "verify", "--db", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ok": true' in result.stdout
