"""Issue 11, finding 14: the gateway started silently with its secrets readable by everyone.

A local user (or a backup job restoring files 0644) can read ``threshold.db``, which holds
the lock's shared key. The gateway must refuse to start, with one line naming the file and
the ``chmod 600`` that fixes it.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from gateway.app.file_modes import SecretFileExposed
from tests.support.cli import run_cli
from tests.support.service import WAIT, Keys, make_gateway_dir, start_gateway


def test_threshold_run_refuses_a_world_readable_database(tmp_path: Path) -> None:
    config = asyncio.run(make_gateway_dir(tmp_path / "gw", Keys()))
    db = tmp_path / "gw" / "threshold.db"
    os.chmod(db, 0o644)
    done = run_cli("run", "--config", str(config), timeout=60)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    refusal = [line for line in lines if str(db) in line]
    assert len(refusal) == 1, done.stderr
    assert "chmod 600" in refusal[0]
    assert refusal[0].startswith("threshold: secret_file_exposed:")
    assert "Traceback" not in done.stderr
    assert "ready at" not in done.stdout


@pytest.mark.parametrize(
    "name",
    [
        "threshold.db",
        "threshold.db-wal",
        "threshold.db-shm",
        "tls.key",
        "sim-lock-front.json",
        "vapid.key",
    ],
)
async def test_every_secret_file_is_checked(tmp_path: Path, name: str) -> None:
    config = await make_gateway_dir(tmp_path / "gw", Keys())
    # A first run leaves the virtual lock's state file; a crash can leave -wal and -shm.
    gateway = await start_gateway(config)
    async with asyncio.timeout(WAIT):
        await gateway.stop()
    path = tmp_path / "gw" / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    os.chmod(path, 0o640)  # group-readable is exposed too
    shown = re.escape(str(path))
    with pytest.raises(SecretFileExposed, match=rf"{shown} \(mode 640.*chmod 600 {shown}$"):
        await start_gateway(config)
    os.chmod(path, 0o600)
    gateway = await start_gateway(config)  # and the fix is what the line says
    async with asyncio.timeout(WAIT):
        await gateway.stop()
