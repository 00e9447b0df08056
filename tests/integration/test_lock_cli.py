"""``threshold lock`` end to end in subprocesses: the virtual lock's state file lets separate
commands see one lock; missing adapter and missing pairing are one line, exit 1."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path


def run(store: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "lock", *argv, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_sim_pair_then_commands_share_one_lock(tmp_path: Path) -> None:
    store = tmp_path / "lock.json"
    # No --address: the CLI scans for a Nuki advertising pairing mode, as with a real one
    # (issue 13, point 6), and finds the virtual lock.
    paired = run(store, "pair", "--name", "Front door", "--sim")
    assert paired.returncode == 0, paired.stderr
    assert json.loads(paired.stdout)["paired"] == "C0:4E:01:5A:00:01"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    unlocked = run(store, "unlock", "--sim")
    assert unlocked.returncode == 0, unlocked.stderr
    assert json.loads(unlocked.stdout)["lock"] == "unlocked"
    # A new process, a new radio: the same lock, still unlocked.
    status = run(store, "status", "--sim")
    assert json.loads(status.stdout)["lock"] == "unlocked"
    locked = run(store, "lock", "--sim")
    assert json.loads(locked.stdout)["lock"] == "locked"
    state = json.loads((tmp_path / "lock-virtual-nuki.json").read_text())
    assert state["lock_state"] == "LOCKED"
    assert len(state["authorizations"]) == 1


def test_not_paired_is_one_line_exit_1(tmp_path: Path) -> None:
    result = run(tmp_path / "none.json", "unlock", "--sim")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "lock_not_paired" in result.stderr
    assert "threshold lock pair" in result.stderr


def test_real_radio_without_adapter_or_lock_is_one_line_exit_1(tmp_path: Path) -> None:
    # These machines have no Bluetooth: the platform backend fails to find an adapter. On
    # a machine with one, no Nuki answers in a second: lock_not_found. Either way, exit 1.
    result = run(tmp_path / "none.json", "scan", "--timeout", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "no_bluetooth_adapter" in result.stderr or "lock_not_found" in result.stderr


def test_a_switchbot_key_is_read_from_stdin_and_kept_private(tmp_path: Path) -> None:
    store = tmp_path / "lock-gate.json"
    key = "00112233445566778899aabbccddeeff"
    argv = ["switchbot-key", "--address", "aa:bb:cc:dd:ee:02", "--key-id", "2A"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "lock",
            *argv,
            "--model",
            "lock-pro",
            "--store",
            str(store),
        ],
        input=key + "\n",
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert key not in result.stdout  # the key is never printed
    assert json.loads(result.stdout)["stored"] == "AA:BB:CC:DD:EE:02"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    kept = json.loads(store.read_text())["lock"]
    assert kept == {
        "vendor": "switchbot",
        "address": "AA:BB:CC:DD:EE:02",
        "key_id": "2a",
        "encryption_key": key,
        "model": "lock-pro",
    }
    bad = subprocess.run(
        [sys.executable, "-m", "gateway", "lock", *argv, "--store", str(tmp_path / "x.json")],
        input="not hex\n",
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "encryption_key" in bad.stderr
    assert not (tmp_path / "x.json").exists()
