"""The ``threshold`` command in a child process, as a user runs it: for black-box CLI tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m gateway ARGV...`` from the repository root; never raises on exit codes."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )
