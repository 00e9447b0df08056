"""The relay as a fleet runs it: several relay processes on one PostgreSQL database.

* Two ``threshold cloud run`` processes behind a round-robin proxy that also injects faults
  (cut requests and answers, duplicates, 500/503, delays): a retry or a duplicate lands on
  the other process. Ten gateways (each its own store and real sync task, in the test's
  process) sync through it while they write; each relay process then serves
  exactly 0..N-1 of every gateway, and a request already served by one process is refused
  as a replay by the other.
* ``--workers 2``: one port, two worker processes, health and readiness, the workers'
  summed ingest metrics; on SQLite ``--workers`` is a one-line refusal.
* ``/readyz`` says 503 when the database is gone while ``/healthz`` still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp

from cloud.relay import Relay, RelayServer
from cloud.signed_request import OWNER, sign_request
from gateway.clients import cloud as cloud_client
from gateway.sync.task import CloudSync, SyncConfig
from gateway.trust.seal import Sealer
from store.checkpoint import CheckpointSigner
from store.db import Store
from tests.support.cli import run_cli
from tests.support.cloud import Parties, append_many, new_parties, open_sealed_store, sync_for
from tests.support.fault_proxy import FaultProxy
from tests.support.postgres import Cluster, start_cluster
from tests.support.relay_backend import RelayBackend
from tests.support.sync_faults import (
    REPO,
    assert_relay_holds_exactly,
    free_port,
    relay_process,
)

GATEWAYS = 10
ENTRIES = 200
STEP = 10
TIMEOUT = aiohttp.ClientTimeout(total=30)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 30)


async def _gateway(gateway_id: str, parties: Parties, db: Path, url: str) -> None:
    """One gateway: appends its log in small steps while its real sync task uploads it."""
    store = await Store.open(
        db,
        signer=CheckpointSigner(parties.gateway, gateway_id),
        seal=Sealer(parties.owner_public),
        checkpoint_every=64,
    )
    done = asyncio.Event()

    def on_ack(size: int) -> None:
        if size >= ENTRIES:
            done.set()

    config = SyncConfig(
        cloud_url=url,
        gateway_id=gateway_id,
        gateway_key=parties.gateway,
        interval_s=0.05,
        backoff_cap_s=0.3,
        probe_interval_s=0.05,
    )
    sync = CloudSync(store, config, on_ack=on_ack)
    await sync.start()
    try:
        for first in range(0, ENTRIES, STEP):
            await append_many(store, STEP, start=first)
            sync.sync_now()
        await asyncio.wait_for(done.wait(), 120)
    finally:
        await sync.stop()
        await store.close()


async def test_two_relay_processes_behind_a_chaotic_round_robin_keep_every_log_exact(
    tmp_path: Path, postgres_cluster: Cluster
) -> None:
    backend = RelayBackend("postgresql", postgres_cluster)
    relay_dir = tmp_path / "cloud"
    relay_dir.mkdir()
    backend.write_config(relay_dir)
    fleet = [(f"gw-fleet-{n}", new_parties()) for n in range(GATEWAYS)]
    registrar = Relay(relay_dir)
    for gateway_id, parties in fleet:
        await registrar.register_gateway(gateway_id, parties.gateway_public, parties.owner_public)
    await registrar.close()
    ports = [free_port(), free_port()]
    relays = [await relay_process(relay_dir, port) for port in ports]
    proxy = FaultProxy(ports)
    url = await proxy.start()
    try:
        await asyncio.gather(
            *(
                _gateway(gateway_id, parties, tmp_path / f"gw{n}.sqlite3", url)
                for n, (gateway_id, parties) in enumerate(fleet)
            )
        )
        # Each process, asked directly, serves every gateway's whole log and no alarm.
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            for port in ports:
                for gateway_id, parties in fleet:
                    entries, _, alarms = await cloud_client.download_log(
                        session, f"http://127.0.0.1:{port}", parties.owner, gateway_id
                    )
                    assert [i for i, _ in entries] == list(range(ENTRIES)), (port, gateway_id)
                    assert alarms == []
            # A request the first process served, replayed to the second: refused.
            gateway_id, parties = fleet[0]
            path = f"/v1/owner/gateways/{gateway_id}/alarms"
            headers = sign_request(parties.owner, OWNER, "GET", path, b"", int(time.time()))
            answers = []
            for port in ports:
                async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as r:
                    answers.append((r.status, await r.json(content_type=None)))
            assert answers[0][0] == 200
            assert answers[1][0] == 401
            assert answers[1][1]["code"] == "unauthorized"
            assert "replayed" in answers[1][1]["detail"]
    finally:
        await proxy.stop()
        for relay in relays:
            await _stop(relay)
    # The proxy draws fates from a seeded sequence, so any 18 requests (ten gateways make
    # far more) meet a cut, a duplicate and an injected 503.
    assert sum(proxy.fates.values()) >= 18
    assert proxy.fates["cut_request"] + proxy.fates["cut_response"] > 0
    assert proxy.fates["dup_first"] + proxy.fates["dup_second"] > 0
    assert proxy.fates["e500"] + proxy.fates["e503"] > 0
    for n, (gateway_id, _) in enumerate(fleet):
        await assert_relay_holds_exactly(
            relay_dir, tmp_path / f"gw{n}.sqlite3", ENTRIES, backend, gateway_id
        )


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
    assert match, f"{name} not in the metrics"
    return float(match.group(1))


async def test_workers_share_one_port_and_their_metrics_add_up(
    tmp_path: Path, postgres_cluster: Cluster
) -> None:
    backend = RelayBackend("postgresql", postgres_cluster)
    relay_dir = tmp_path / "cloud"
    relay_dir.mkdir()
    backend.write_config(relay_dir)
    parties = new_parties()
    registrar = Relay(relay_dir)
    await registrar.register_gateway("gw-cloud-test", parties.gateway_public, parties.owner_public)
    await registrar.close()
    port, metrics_port = free_port(), free_port()
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "cloud",
        "run",
        "--dir",
        str(relay_dir),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--metrics-port",
        str(metrics_port),
        "--seconds",
        "120",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert supervisor.stdout is not None
    store = await open_sealed_store(tmp_path / "gw.sqlite3", parties, checkpoint_every=64)
    try:
        line = await asyncio.wait_for(supervisor.stdout.readline(), 60)
        assert b"(2 worker processes)" in line, line
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            for path, status in (("/healthz", 200), ("/readyz", 200)):
                async with session.get(url + path) as response:
                    assert response.status == status
            await append_many(store, 500)
            sync = sync_for(store, url, parties)
            assert await asyncio.wait_for(sync.upload_backlog(), 60) == 500
            await sync.stop()
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                assert response.status == 200
                text = await response.text()
        assert _metric(text, "threshold_relay_entries_ingested_total") == 500
        batches = _metric(text, "threshold_relay_batches_total")
        assert batches >= 1
        assert _metric(text, "threshold_relay_upload_seconds_count") >= batches
    finally:
        await store.close()
        await _stop(supervisor)
    assert supervisor.returncode == 0


def test_workers_need_postgresql(tmp_path: Path) -> None:
    result = run_cli("cloud", "run", "--dir", str(tmp_path / "cloud"), "--workers", "2")
    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


async def test_readyz_fails_when_the_database_is_gone(tmp_path: Path) -> None:
    cluster = start_cluster()
    try:
        backend = RelayBackend("postgresql", cluster)
        server = RelayServer(Relay(tmp_path / "cloud", storage=backend.config(tmp_path / "cloud")))
        url = await server.start()
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(url + "/readyz") as response:
                assert response.status == 200
            cluster.stop()
            async with session.get(url + "/readyz") as response:
                assert response.status == 503
                assert (await response.json(content_type=None))["code"] == "not_ready"
            async with session.get(url + "/healthz") as response:
                assert response.status == 200
        await server.stop()
    finally:
        cluster.stop()
