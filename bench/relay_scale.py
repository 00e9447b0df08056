"""Benchmark: the relay at fleet scale, on PostgreSQL, with 1, 2 and 4 relay processes.

Prints one JSON line:

- ``entries_per_s``: for each relay process count, the entries accepted per second while
  ``--gateways`` simulated gateways (default 1,000) each upload ``--entries`` sealed entries
  (default 100, in batches of ``--batch``, default 100) all at once, from the first request
  to the last answer; each process count gets a fresh database;
- ``copy_entries_per_s``: the same rows (gateway id, index, sealed bytes, leaf hash) written
  by one raw binary ``COPY`` into the same ``entry`` table of a freshly migrated database, in
  the same run (the faster of a copy before and one after the relay runs);
- ``relay_vs_copy``: the best ``entries_per_s`` over ``copy_entries_per_s`` (target >= 0.3),
  and ``relay_vs_copy_by_workers`` for each count;
- ``upload_ms_p50`` / ``upload_ms_p99``: each upload's latency (request sent to answer read),
  for each process count;
- ``uploads_per_s``: the same runs counted in uploads (what small fixed-size batches cost);
- ``stored_bytes_per_entry`` (the ``entry`` and ``tree_node`` tables, indexes included) and
  ``stored_bytes_per_upload`` (``witnessed`` and ``request_nonce``), after the first run;
- ``cpu_ms_per_upload``: for each process count, the CPU time (user and system, from
  ``/proc``) the relay processes, this run's PostgreSQL server processes and the client each
  spent per upload while the uploads ran: where the time goes, and what more cores would buy.

Everything the relay does for real is done: request signatures and nonces, the checkpoint
signature, the leaf and tree hashes, the consistency proof, the per-gateway row lock, the
tree nodes and the cosigned checkpoint written in one transaction per batch. The sealed
entries are random bytes of a sealed entry's size (560 bytes: the smallest padded class and
the sealed box), which is all the relay sees of them. The uploads are prepared (bodies and
signed headers) before the clock starts, so the figure is the relay's and PostgreSQL's.

The relays run as ``threshold cloud run --workers N`` on a throw-away PostgreSQL cluster
(tests/support/postgres.py; Debian's postgresql package), durable as in production (fsync and
synchronous commit on) unless ``--no-durable``.

    .venv/bin/python bench/relay_scale.py                        # 1,000 gateways, a few minutes
    .venv/bin/python bench/relay_scale.py --gateways 20 --entries 10 --workers 1,2   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == _REPO / "bench":
    sys.path[0] = str(_REPO)

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

from cloud import wire  # noqa: E402
from cloud.signed_request import gateway_principal, sign_request  # noqa: E402
from cloud.storage import StorageConfig, open_storage  # noqa: E402
from store import merkle  # noqa: E402
from store.checkpoint import CheckpointSigner  # noqa: E402
from store.merkle import MemoryTree  # noqa: E402
from tests.support.postgres import Cluster, free_port, start_cluster  # noqa: E402

SEALED_BYTES = 512 + 48
OWNER = bytes(SigningKey(os.urandom(32)).verify_key)


@dataclass
class Gateway:
    gateway_id: str
    key: SigningKey
    entries: list[bytes]
    bodies: list[tuple[str, bytes]]  # (path, encoded batch), in order

    @property
    def public(self) -> bytes:
        return bytes(self.key.verify_key)


def make_gateway(n: int, entries: int, batch: int) -> Gateway:
    gateway_id = f"gw-bench-{n:07d}"
    key = SigningKey(os.urandom(32))
    signer = CheckpointSigner(key, gateway_id)
    sealed = [os.urandom(SEALED_BYTES) for _ in range(entries)]
    tree = MemoryTree([merkle.leaf_hash(s) for s in sealed])
    checkpoint = signer.sign(entries, tree.root(), 1_700_000_000_000)
    bodies = []
    for start in range(0, entries, batch):
        end = min(start + batch, entries)
        proof = merkle.consistency_proof(tree, end, entries)
        upload = wire.UploadBatch(
            gateway_id, start, tuple(sealed[start:end]), checkpoint, tuple(proof)
        )
        bodies.append((f"/v1/gateways/{gateway_id}/entries", wire.encode_batch(upload)))
    return Gateway(gateway_id, key, sealed, bodies)


def rows_of(gateways: list[Gateway]) -> list[tuple[str, int, bytes, bytes]]:
    return [
        (g.gateway_id, i, sealed, merkle.leaf_hash(sealed))
        for g in gateways
        for i, sealed in enumerate(g.entries)
    ]


def fresh_database(cluster: Cluster, prefix: str) -> tuple[str, Path]:
    name = cluster.create_database(prefix)
    secret = Path(tempfile.mkdtemp(prefix="threshold-bench-pw-")) / "db.password"
    cluster.write_password_file(secret)
    return cluster.dsn(name), secret


async def migrate(dsn: str, secret: Path) -> None:
    await (await open_storage(StorageConfig.postgresql(dsn, secret, pool_size=1))).close()


def register(dsn: str, password: str, gateways: list[Gateway]) -> None:
    with psycopg.connect(dsn, password=password) as conn:
        conn.execute(
            "INSERT INTO gateway (gateway_id, public_key, owner_key, registered_ms)"
            " SELECT g, k, %s, 0 FROM unnest(%s::text[], %s::bytea[]) AS u(g, k)",
            (OWNER, [g.gateway_id for g in gateways], [g.public for g in gateways]),
        )
        conn.execute(
            "INSERT INTO log_state (gateway_id, held_size, updated_ms)"
            " SELECT gateway_id, 0, 0 FROM gateway"
        )


def raw_copy(dsn: str, password: str, rows: list[tuple[str, int, bytes, bytes]]) -> float:
    """Entries per second of one binary COPY of ``rows`` into ``entry``, commit included."""
    with psycopg.connect(dsn, password=password) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY entry (gateway_id, idx, sealed, leaf_hash) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["text", "int8", "bytea", "bytea"])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
    return len(rows) / elapsed


def _cpu_s(pid: int) -> tuple[float, int]:
    """(user + system seconds of ``pid`` and of its reaped children, its parent's pid)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK"), int(fields[1])


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and every live descendant (a relay supervisor and its
    workers; a postmaster and its backends); a descendant that ended is in its parent's."""
    spent: dict[int, float] = {}
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                spent[int(entry)], parents[int(entry)] = _cpu_s(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total = 0.0
    for pid, cpu in spent.items():
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root:
            total += cpu
    return total


def postmaster_pid(cluster: Cluster) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])


async def upload_all(
    url: str, gateways: list[Gateway], concurrency: int
) -> tuple[float, list[float], float]:
    """(wall seconds, per-upload latencies in ms, this process's CPU seconds): every gateway
    uploads its batches in order, all gateways at once."""
    now = int(time.time())
    signed = [
        [
            (
                path,
                body,
                sign_request(g.key, gateway_principal(g.gateway_id), "POST", path, body, now),
            )
            for path, body in g.bodies
        ]
        for g in gateways
    ]
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(uploads: list[tuple[str, bytes, dict[str, str]]]) -> None:
            for path, body, headers in uploads:
                headers = {**headers, "Content-Type": wire.BATCH_CONTENT_TYPE}
                sent = time.perf_counter()
                async with session.post(url + path, data=body, headers=headers) as response:
                    answer = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"upload refused: {response.status} {answer[:300]!r}")
                latencies.append((time.perf_counter() - sent) * 1000)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(u) for u in signed))
        return time.perf_counter() - started, latencies, time.process_time() - cpu


def start_relays(
    directory: Path, dsn: str, secret: Path, workers: int, pool: int
) -> tuple[subprocess.Popen[str], str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "relay.toml").write_text(
        f'[storage]\nbackend = "postgresql"\ndsn = "{dsn}"\npassword_file = "{secret}"\n'
        f"pool_size = {pool}\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "cloud",
            "run",
            "--dir",
            str(directory),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ],
        cwd=_REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"the relay did not start: {line!r}")
    return proc, f"http://127.0.0.1:{port}"


def stored_bytes(conn: psycopg.Connection[Any], entries: int, uploads: int) -> dict[str, float]:
    """What the relay's tables hold per entry and per upload, indexes included."""

    def size(table: str) -> int:
        row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()
        assert row is not None
        return int(row[0])

    conn.execute("VACUUM ANALYZE")
    return {
        "stored_bytes_per_entry": round((size("entry") + size("tree_node")) / entries, 1),
        "stored_bytes_per_upload": round((size("witnessed") + size("request_nonce")) / uploads, 1),
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=100, help="entries per gateway")
    parser.add_argument("--batch", type=int, default=100, help="entries per upload")
    parser.add_argument("--workers", default="1,2,4", help="relay process counts to run")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="client connections (0: one per gateway)"
    )
    parser.add_argument(
        "--pool", type=int, default=8, help="database connections per relay process"
    )
    parser.add_argument(
        "--no-durable", action="store_true", help="fsync and synchronous_commit off"
    )
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    gateways = [make_gateway(n, args.entries, args.batch) for n in range(args.gateways)]
    rows = rows_of(gateways)
    total = len(rows)
    cluster = start_cluster(durable=not args.no_durable)
    figures: dict[str, Any] = {
        "gateways": args.gateways,
        "entries_per_gateway": args.entries,
        "batch": args.batch,
        "sealed_bytes": SEALED_BYTES,
        "durable": not args.no_durable,
        "cpus": os.cpu_count(),
    }
    try:
        copies = []

        def one_copy() -> None:
            dsn, secret = fresh_database(cluster, "copy")
            asyncio.run(migrate(dsn, secret))
            copies.append(raw_copy(dsn, cluster.password, rows))

        one_copy()
        per_workers: dict[str, float] = {}
        p50: dict[str, float] = {}
        p99: dict[str, float] = {}
        uploads: dict[str, float] = {}
        cpu: dict[str, dict[str, float]] = {}
        server = postmaster_pid(cluster)
        with tempfile.TemporaryDirectory(prefix="threshold-bench-relay-") as tmp:
            for workers in counts:
                dsn, secret = fresh_database(cluster, f"relay{workers}")
                asyncio.run(migrate(dsn, secret))
                register(dsn, cluster.password, gateways)
                proc, url = start_relays(
                    Path(tmp) / f"relay{workers}", dsn, secret, workers, args.pool
                )
                try:
                    concurrency = args.concurrency or args.gateways
                    relay_cpu, db_cpu = tree_cpu_s(proc.pid), tree_cpu_s(server)
                    elapsed, latencies, client_cpu = asyncio.run(
                        upload_all(url, gateways, concurrency)
                    )
                    relay_cpu = tree_cpu_s(proc.pid) - relay_cpu
                    db_cpu = tree_cpu_s(server) - db_cpu
                finally:
                    proc.terminate()
                    proc.wait(timeout=60)
                with psycopg.connect(dsn, password=cluster.password, autocommit=True) as conn:
                    stored = conn.execute("SELECT count(*) FROM entry").fetchone()
                    held = conn.execute("SELECT sum(held_size) FROM log_state").fetchone()
                    # Every entry exactly once: the figure is for work really done.
                    assert stored == (total,), stored
                    assert held == (total,), held
                    if workers == counts[0]:
                        figures.update(
                            stored_bytes(conn, total, len(gateways) * len(gateways[0].bodies))
                        )
                per_workers[str(workers)] = round(total / elapsed)
                uploads[str(workers)] = round(len(gateways) * len(gateways[0].bodies) / elapsed)
                p50[str(workers)] = round(statistics.median(latencies), 1)
                p99[str(workers)] = round(percentile(latencies, 0.99), 1)
                count = len(gateways) * len(gateways[0].bodies)
                cpu[str(workers)] = {
                    "relay": round(relay_cpu * 1000 / count, 2),
                    "postgres": round(db_cpu * 1000 / count, 2),
                    "client": round(client_cpu * 1000 / count, 2),
                }
        one_copy()
        copy_rate = max(copies)
        figures.update(
            {
                "entries": total,
                "entries_per_s": per_workers,
                "copy_entries_per_s": round(copy_rate),
                "copy_runs_entries_per_s": [round(c) for c in copies],
                "relay_vs_copy": round(max(per_workers.values()) / copy_rate, 3),
                "relay_vs_copy_by_workers": {
                    k: round(v / copy_rate, 3) for k, v in per_workers.items()
                },
                "upload_ms_p50": p50,
                "upload_ms_p99": p99,
                "uploads_per_s": uploads,
                "cpu_ms_per_upload": cpu,
            }
        )
    finally:
        cluster.stop()
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
