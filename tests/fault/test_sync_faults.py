"""Sync under faults: a chaotic network, a relay restarted mid-sync, a gateway SIGKILLed.

The default sizes keep the run short; ``THRESHOLD_CHAOS_ENTRIES`` scales the chaos run up
(it never goes below the 10,000 entries the claim is about).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from cloud.relay import Relay, RelayServer
from tests.support.cloud import GATEWAY_ID, Parties, new_parties
from tests.support.fault_proxy import FaultProxy
from tests.support.relay_backend import RelayBackend
from tests.support.sync_faults import (
    Worker,
    assert_relay_holds_exactly,
    free_port,
    relay_process,
)

CHAOS_ENTRIES = max(10_000, int(os.environ.get("THRESHOLD_CHAOS_ENTRIES", "10000")))


async def start_inprocess_relay(
    directory: Path, parties: Parties, backend: RelayBackend | None = None
) -> RelayServer:
    relay = Relay(directory, storage=None if backend is None else backend.config(directory))
    await relay.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    server = RelayServer(relay)
    await server.start()
    return server


async def test_chaos_network_delivers_every_entry_exactly_once(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server = await start_inprocess_relay(tmp_path / "cloud", parties, relay_backend)
    proxy = FaultProxy(server.port)
    url = await proxy.start()
    db = tmp_path / "gw.sqlite3"
    try:
        worker = await Worker.launch(parties, db, url, CHAOS_ENTRIES)
        assert await worker.until(lambda w: w.acked >= CHAOS_ENTRIES // 3)
        proxy.down_for(1.0)
        result = await worker.finish()
    finally:
        await proxy.stop()
        await server.stop()
    assert proxy.fates["cut_request"]
    assert proxy.fates["cut_response"]
    assert proxy.fates["e503"]
    assert proxy.fates["dup_first"] + proxy.fates["dup_second"] > 0
    assert proxy.fates["down"] > 0
    await assert_relay_holds_exactly(tmp_path / "cloud", db, CHAOS_ENTRIES, relay_backend)
    # Memory stays bounded under chaos: what syncing adds to the process, whatever the
    # libraries weigh (bench/sync.py measures the whole process against its 200 MB target).
    grown = float(str(result["peak_rss_mb"])) - float(str(result["baseline_rss_mb"]))
    print("rss", result["peak_rss_mb"], result["baseline_rss_mb"])
    assert grown < 64, result


async def test_relay_restarted_mid_sync_loses_and_duplicates_nothing(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    relay_dir = tmp_path / "cloud"
    relay_dir.mkdir()
    relay_backend.write_config(relay_dir)  # the relay process reads relay.toml
    registrar = Relay(relay_dir)
    await registrar.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    await registrar.close()
    port = free_port()
    relay = await relay_process(relay_dir, port)
    db = tmp_path / "gw.sqlite3"
    total = 4000
    worker = await Worker.launch(parties, db, f"http://127.0.0.1:{port}", total)
    try:
        assert await worker.until(lambda w: w.acked >= 1000)
        relay.send_signal(signal.SIGKILL)
        await asyncio.wait_for(relay.wait(), 30)
        relay = await relay_process(relay_dir, port)
        await worker.finish()
    finally:
        if worker.proc.returncode is None:
            await worker.kill()
        relay.send_signal(signal.SIGTERM)
        await asyncio.wait_for(relay.wait(), 30)
    await assert_relay_holds_exactly(relay_dir, db, total, relay_backend)


async def test_gateway_killed_mid_sync_resumes_from_the_acknowledged_size(tmp_path: Path) -> None:
    parties = new_parties()
    server = await start_inprocess_relay(tmp_path / "cloud", parties)
    url = f"http://127.0.0.1:{server.port}"
    db = tmp_path / "gw.sqlite3"
    total = 4000
    try:
        first = await Worker.launch(parties, db, url, total)
        assert await first.until(lambda w: w.acked >= 1000)
        await first.kill()
        acked_before = first.acked
        second = await Worker.launch(parties, db, url, total)
        await second.until(lambda w: w.start_acked is not None)
        assert second.start_acked is not None
        assert second.start_acked >= acked_before
        await second.finish()
    finally:
        await server.stop()
    await assert_relay_holds_exactly(tmp_path / "cloud", db, total)
