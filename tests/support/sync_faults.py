"""Shared by the fault tests: a gateway process (tests/support/sync_worker.py) and the lines
it prints, a relay started as ``threshold cloud run``, and the check that a relay holds
exactly a gateway's log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sqlite3
import sys
from pathlib import Path

from cloud.storage import open_storage
from store import merkle
from tests.support.cloud import GATEWAY_ID, Parties
from tests.support.postgres import free_port
from tests.support.relay_backend import RelayBackend

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 240.0
__all__ = ["Worker", "assert_relay_holds_exactly", "free_port", "relay_process"]


class Worker:
    """A gateway process (tests/support/sync_worker.py) and the lines it prints."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.acked = 0
        self.start_acked: int | None = None
        self.result: dict[str, object] | None = None

    @classmethod
    async def launch(
        cls,
        parties: Parties,
        db: Path,
        cloud: str,
        total: int,
        gateway_id: str = GATEWAY_ID,
        **settings: object,
    ) -> Worker:
        config = {
            **settings,
            "gateway_seed": base64.b64encode(bytes(parties.gateway)).decode(),
            "owner_public": base64.b64encode(parties.owner_public).decode(),
            "gateway_id": gateway_id,
            "db": str(db),
            "cloud": cloud,
            "total": total,
            "timeout_s": WAIT_S,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.sync_worker",
            json.dumps(config),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def until(self, predicate: object) -> bool:
        """Read lines until ``predicate(self)`` holds (True) or the process ends (False)."""
        assert self.proc.stdout is not None
        check = predicate  # a callable taking the worker
        while not check(self):  # type: ignore[operator]
            line = await asyncio.wait_for(self.proc.stdout.readline(), WAIT_S)
            if not line:
                return False
            text = line.decode().strip()
            if text.startswith("acked "):
                self.acked = max(self.acked, int(text.split()[1]))
            elif text.startswith("start "):
                self.start_acked = int(text.split()[1])
            elif text.startswith("done "):
                self.result = json.loads(text[5:])
        return True

    async def finish(self) -> dict[str, object]:
        await self.until(lambda w: w.result is not None)
        assert await asyncio.wait_for(self.proc.wait(), WAIT_S) == 0
        assert self.result is not None
        return self.result

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), WAIT_S)


async def assert_relay_holds_exactly(
    relay_dir: Path,
    gateway_db: Path,
    total: int,
    backend: RelayBackend | None = None,
    gateway_id: str = GATEWAY_ID,
) -> None:
    config = None if backend is None else backend.config(relay_dir)
    storage = await open_storage(config or RelayBackend("sqlite").config(relay_dir))
    try:
        held = await storage.entries(gateway_id, 0, total + 10)
        assert [i for i, _ in held] == list(range(total))
        conn = sqlite3.connect(gateway_db)
        local = [
            bytes(r[0]) for r in conn.execute("SELECT leaf_bytes FROM audit_entry ORDER BY idx")
        ]
        conn.close()
        assert local == [sealed for _, sealed in held]
        assert await storage.held_size(gateway_id) == total
        root = merkle.MemoryTree([merkle.leaf_hash(s) for _, s in held]).root()
        finals = [
            w
            for w in await storage.witnessed(gateway_id)
            if w.checkpoint.checkpoint.tree_size == total
        ]
        assert finals
        assert finals[0].checkpoint.checkpoint.root_hash == root
        assert finals[0].cosignature is not None
        assert await storage.alarms(gateway_id) == []
    finally:
        await storage.close()


async def relay_process(directory: Path, port: int, *extra: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "cloud",
        "run",
        "--dir",
        str(directory),
        "--bind",
        f"127.0.0.1:{port}",
        "--seconds",
        str(WAIT_S),
        *extra,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"listening on" in line
    return proc
