"""Benchmark: the durable audit log against raw SQLite, and proofs at a million entries.

Prints one JSON line:

- ``durable_appends_per_s``: ``Store.append``, one entry per durable transaction (WAL,
  synchronous=FULL), through the store's writer thread: canonical encoding, leaf and node hashes,
  tree nodes, time floor, checkpoints every 256 entries;
- ``raw_sqlite_commits_per_s``: the reference, measured in the same run: plain ``sqlite3``,
  same pragmas, one comparable row (time, kind, body, 32-byte hash, and as many leaf bytes
  as a sealed leaf) per commit;
- ``durable_vs_raw``: their ratio (target >= 0.5);
- ``batched_appends_per_s``: 100 appends per transaction;
- ``proof_ms_at_1m``: median time of ``Store.inclusion_proof`` for a random leaf of a
  ``--entries`` (default 1,000,000) log, executor hop included (target <= 20);
- ``checkpoint_ms_at_1m``: median time to append one entry and sign a checkpoint over it;
- ``db_bytes_per_entry``: database size divided by entries, at ``--entries``;
- ``verify_entries_per_s``: ``threshold audit verify`` (``store.verify.verify_log``, clip
  files skipped: there are none) over the whole ``--entries`` log: every row checked
  against its leaf's commitments, every leaf hash, the tree rebuilt and compared with the
  stored nodes, every checkpoint's signature and consistency;
- ``raw_sha256_entries_per_s``: the reference, measured in the same run on the same
  database: the same query over the same rows, and one SHA-256 of each leaf's bytes
  (reading the log and hashing each leaf once, the floor of any verifier);
- ``verify_vs_raw``: their ratio (target >= 0.3).

Every log is sealed to an owner key, so its leaves are in the gateway's default format
(format 2: field tags and a sealed box, docs/audit-log.md). The large log is built with
10,000 appends per transaction and a checkpoint every 4,096 entries.

    .venv/bin/python bench/store.py            # full run, about five minutes
    .venv/bin/python bench/store.py --entries 5000 --appends 300   # smoke size
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and its own name would
# shadow the ``store`` package it measures: put the repository there instead.
_REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == _REPO / "bench":
    sys.path[0] = str(_REPO)

from nacl.signing import SigningKey  # noqa: E402

from gateway.trust.seal import Sealer  # noqa: E402
from store.checkpoint import CheckpointSigner  # noqa: E402
from store.db import Store  # noqa: E402
from store.transaction import StoreTransaction  # noqa: E402
from store.verify import verify_log  # noqa: E402

CHECKPOINT_EVERY = 4096
#: A format-2 leaf of the smallest size class: 0x02, three 16-byte tags, a sealed box of 512.
SEALED_LEAF_BYTES = 1 + 3 * 16 + 512 + 48
BODY = {"door": "front", "ticket": "01J9Z3Q8W6XK2M4N5P7R8S9T0V", "purpose": "delivery"}


def raw_sha256_per_s(path: Path) -> tuple[float, int]:
    """The verifier's reference: the same rows, one SHA-256 of each leaf."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sha256 = hashlib.sha256
    count = 0
    start = time.perf_counter()
    for row in conn.execute(
        "SELECT idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash FROM audit_entry"
        " ORDER BY idx"
    ):
        sha256(row[5]).digest()
        count += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed, count


def verify_per_s(path: Path, public_key: bytes) -> float:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        start = time.perf_counter()
        report = verify_log(conn, public_key, clip_files=False)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    if not report.ok:
        raise SystemExit(f"verify failed on the benchmark's own log: {report.problem}")
    return report.entries / elapsed


def raw_commits_per_s(path: Path, count: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(
        "CREATE TABLE entry (idx INTEGER PRIMARY KEY, time_ms INTEGER, kind TEXT, body TEXT,"
        " leaf_bytes BLOB, leaf_hash BLOB)"
    )
    body = json.dumps(BODY, sort_keys=True, separators=(",", ":"))
    # As many leaf bytes as the subject's sealed leaf: format 2 over the 512-byte class.
    leaf = os.urandom(SEALED_LEAF_BYTES)
    start = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO entry VALUES (?, ?, ?, ?, ?, ?)",
            (i, time.time_ns() // 1_000_000, "session.granted", body, leaf, os.urandom(32)),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


async def durable_appends_per_s(store: Store, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        await store.append("session.granted", {**BODY, "n": i})
    return count / (time.perf_counter() - start)


async def batched_appends_per_s(store: Store, batches: int, per_batch: int = 100) -> float:
    def batch(tx: StoreTransaction) -> None:
        for i in range(per_batch):
            tx.append("session.granted", {**BODY, "n": i})

    start = time.perf_counter()
    for _ in range(batches):
        await store.transact(batch)
    return batches * per_batch / (time.perf_counter() - start)


async def grow(store: Store, entries: int, per_batch: int = 10_000) -> None:
    while store.tree_size < entries:
        todo = min(per_batch, entries - store.tree_size)

        def batch(tx: StoreTransaction, todo: int = todo) -> None:
            for i in range(todo):
                tx.append("session.granted", {**BODY, "n": i})

        await store.transact(batch)


def database_bytes(directory: Path, name: str) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.name.startswith(name))


async def run(entries: int, appends: int, samples: int) -> dict[str, float | int]:
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-bench")
    seal = Sealer(bytes(SigningKey.generate().verify_key))
    with tempfile.TemporaryDirectory(prefix="threshold-bench-") as tmp:
        directory = Path(tmp)
        # Interleave reference and subject twice and keep each one's best round: the machine
        # is shared, and the ratio is what this benchmark reports.
        raw_rounds, durable_rounds = [], []
        store = await Store.open(directory / "durable.db", signer=signer, seal=seal)
        try:
            for round_no in range(2):
                raw_rounds.append(raw_commits_per_s(directory / f"raw{round_no}.db", appends))
                durable_rounds.append(await durable_appends_per_s(store, appends))
        finally:
            await store.close()
        raw, durable = max(raw_rounds), max(durable_rounds)

        store = await Store.open(
            directory / "big.db", signer=signer, checkpoint_every=CHECKPOINT_EVERY, seal=seal
        )
        try:
            batched = await batched_appends_per_s(store, max(1, appends // 100))
            await grow(store, entries)
            size = store.tree_size
            rng = random.Random(1)
            proof_times = []
            for _ in range(samples):
                index = rng.randrange(size)
                start = time.perf_counter()
                await store.inclusion_proof(index, size)
                proof_times.append(time.perf_counter() - start)
            checkpoint_times = []
            for _ in range(max(5, samples // 10)):
                start = time.perf_counter()
                await store.transact(
                    lambda tx: (tx.append("session.granted", BODY), tx.checkpoint())
                )
                checkpoint_times.append(time.perf_counter() - start)
            final_size = store.tree_size
            await store.checkpoint()
        finally:
            await store.close()
        db_bytes = database_bytes(directory, "big.db")
        # Interleaved, best of two each, like the append rounds.
        sha_rounds, verify_rounds = [], []
        for _ in range(2):
            sha_rounds.append(raw_sha256_per_s(directory / "big.db")[0])
            verify_rounds.append(verify_per_s(directory / "big.db", signer.public_key))
        raw_sha, verified = max(sha_rounds), max(verify_rounds)
    return {
        "durable_appends_per_s": round(durable, 1),
        "raw_sqlite_commits_per_s": round(raw, 1),
        "durable_vs_raw": round(durable / raw, 3),
        "batched_appends_per_s": round(batched, 1),
        "entries": size,
        "proof_ms_at_1m": round(statistics.median(proof_times) * 1000, 3),
        "checkpoint_ms_at_1m": round(statistics.median(checkpoint_times) * 1000, 3),
        "db_bytes_per_entry": round(db_bytes / final_size, 1),
        "verify_entries_per_s": round(verified, 1),
        "raw_sha256_entries_per_s": round(raw_sha, 1),
        "verify_vs_raw": round(verified / raw_sha, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="size of the big log")
    parser.add_argument("--appends", type=int, default=2000, help="durable appends per round")
    parser.add_argument("--samples", type=int, default=200, help="proofs to time")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.entries, args.appends, args.samples))))


if __name__ == "__main__":
    main()
