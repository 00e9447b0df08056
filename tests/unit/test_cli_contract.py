"""The CLI's error contract: wrong flags are one line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv], capture_output=True, text=True, timeout=60
    )


def test_unknown_command_is_one_line_usage_error() -> None:
    result = run("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") <= 2


def test_help_lists_groups() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "version" in result.stdout
