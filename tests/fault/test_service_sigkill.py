"""Crash and signal behaviour of ``threshold run`` as a real process.

SIGKILL while a session holds the door open with the virtual lock unlocked: on restart the
gateway reconciles, the lock is locked within 10 s and the log says what happened. SIGTERM:
open sessions are relocked and the process exits within 5 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

from gateway.app.tls import tls_fingerprint
from gateway.clients.lan import GatewayClient
from store.db import Store
from tests.support.process import threshold_run
from tests.support.service import GATEWAY_ID, WAIT, Keys, make_gateway_dir, make_ticket


def sim_lock_state(directory: Path) -> str:
    return str(json.loads((directory / "sim-lock-front.json").read_text())["lock_state"])


async def test_sigkill_with_door_open_is_reconciled_on_restart(tmp_path: Path) -> None:
    keys = Keys()
    directory = tmp_path / "gw"
    config = await make_gateway_dir(directory, keys)
    fingerprint = tls_fingerprint(directory / "tls.crt")
    log = tmp_path / "gateway.log"
    t = make_ticket(keys.owner, open_s=600)

    async with threshold_run(config, log) as (proc, url):
        async with GatewayClient(url, fingerprint=fingerprint, timeout_s=WAIT) as client:
            reply = await client.open(
                gateway_id=GATEWAY_ID,
                ticket=t.token,
                jti=t.jti,
                holder=t.holder,
                door="front",
                package_code="PKG-1",
            )
            assert reply.body["state"] == "open"
            session_id = reply.body["session"]
        assert sim_lock_state(directory) == "UNLOCKED"
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), WAIT)
    assert sim_lock_state(directory) == "UNLOCKED"  # the physical lock stayed open

    restarted = time.monotonic()
    async with threshold_run(config, log) as (proc, url):
        async with asyncio.timeout(10 - (time.monotonic() - restarted)):
            # The lock's state lives in a file another process writes: there is no event to
            # await across processes, so this one wait polls (with its deadline above).
            while sim_lock_state(directory) != "LOCKED":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 5) == 0

    store = await Store.open(directory / "threshold.db")
    try:
        events = await store.read(
            lambda conn: [
                (row[0], json.loads(row[1]))
                for row in conn.execute("SELECT kind, body FROM audit_entry ORDER BY idx")
            ]
        )
    finally:
        await store.close()
    mine = [(kind, body) for kind, body in events if body.get("session") == session_id]
    assert [k for k, _ in mine][-2:] == ["session.relocking", "session.closed"]
    assert mine[-2][1]["cause"] == "reconcile"
    assert mine[-2][1]["lock"] == "unlocked"


async def test_sigterm_relocks_and_exits_within_5_s(tmp_path: Path) -> None:
    keys = Keys()
    directory = tmp_path / "gw"
    config = await make_gateway_dir(directory, keys)
    fingerprint = tls_fingerprint(directory / "tls.crt")
    t = make_ticket(keys.owner, open_s=600)
    async with threshold_run(config, tmp_path / "gateway.log") as (proc, url):
        async with GatewayClient(url, fingerprint=fingerprint, timeout_s=WAIT) as client:
            await client.open(
                gateway_id=GATEWAY_ID,
                ticket=t.token,
                jti=t.jti,
                holder=t.holder,
                door="front",
                package_code="PKG-1",
            )
        assert sim_lock_state(directory) == "UNLOCKED"
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 5) == 0
        assert time.monotonic() - started < 5
    assert sim_lock_state(directory) == "LOCKED"
