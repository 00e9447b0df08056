"""Benchmark: the durable audit log against raw SQLite, and proofs at a million entries.

Prints one JSON line:

- ``durable_appends_per_s``: ``Store.append``, one entry per durable transaction (WAL,
  synchronous=FULL), through the store's writer thread: canonical encoding, commitment tags,
  sealing (with the gateway's seal key pool, ``gateway.app.seal_keys``, as wired), leaf and
  node hashes, tree nodes, time floor, checkpoints every 256 entries;
- ``raw_sqlite_commits_per_s``: the reference, measured in the same run: plain ``sqlite3``,
  same pragmas, one comparable row (time, kind, the same body, the sealed flag, a 32-byte
  hash, and as many leaf bytes as the subject's sealed leaf: format 3, 625) per commit;
- ``durable_vs_raw``: the median over ``--rounds`` rounds of ``--appends`` of each, the
  reference and the subject alternating commit by commit (the VM's fsync latency swings
  several-fold within a second), of their ratio (target >= 0.5); the two rates are medians;
- ``batched_appends_per_s``: 100 appends per transaction;
- ``proof_ms_at_1m``: median time of ``Store.inclusion_proof`` for a random leaf of a
  ``--entries`` (default 1,000,000) log, executor hop included (target <= 20);
- ``checkpoint_ms_at_1m``: median time to append one entry and sign a checkpoint over it;
- ``db_bytes_per_entry``: database size divided by entries, at ``--entries``;
- ``verify_entries_per_s``: ``threshold audit verify`` as it runs by default
  (``store.verify.verify_log`` with ``default_workers()`` processes, ``verify_processes``;
  clip files skipped: there are none) over the whole ``--entries`` log: every row checked
  against its leaf's commitments, every leaf hash, the tree rebuilt and compared with the
  stored nodes, every checkpoint's signature and consistency;
- ``verify_1proc_entries_per_s``: the same in one process (``--jobs 1``);
- ``raw_sha256_entries_per_s``: the reference, measured in the same run on the same
  database, in one process: the same query over the same rows, and one SHA-256 of each
  leaf's bytes (reading the log and hashing each leaf once, the floor of any verifier);
- ``verify_vs_raw`` and ``verify_1proc_vs_raw``: medians over ``--verify-rounds`` rounds
  (reference, then default, then one process) of the ratios (target >= 0.3).

Every log is sealed to an owner key, so its leaves are in the gateway's default format
(format 3: field tags, a visit tag and a sealed box, docs/audit-log.md). The large log is
built with 10,000 appends per transaction and a checkpoint every 4,096 entries.

    .venv/bin/python bench/store.py            # full run, about eight minutes
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

from gateway.app.seal_keys import SealKeyPool  # noqa: E402
from gateway.trust.seal import Sealer  # noqa: E402
from store.checkpoint import CheckpointSigner  # noqa: E402
from store.db import Store  # noqa: E402
from store.transaction import StoreTransaction  # noqa: E402
from store.verify import default_workers, verify_log  # noqa: E402

CHECKPOINT_EVERY = 4096
#: A sealed leaf of the smallest size class as the store writes every one (format 3, since
#: the uniform leaves of docs/privacy.md): 0x03, three 16-byte field tags, a 16-byte visit
#: tag, a sealed box of 512 bytes.
SEALED_LEAF_BYTES = 1 + 3 * 16 + 16 + 512 + 48
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


def verify_per_s(path: Path, public_key: bytes, workers: int) -> float:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        start = time.perf_counter()
        report = verify_log(conn, public_key, clip_files=False, workers=workers)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    if not report.ok:
        raise SystemExit(f"verify failed on the benchmark's own log: {report.problem}")
    return report.entries / elapsed


class RawLog:
    """The append reference: plain ``sqlite3``, the store's pragmas, one comparable row per
    durable commit. Opened once and kept, like the store it is compared with, so neither
    side's rounds pay for creating a file."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute(
            "CREATE TABLE entry (idx INTEGER PRIMARY KEY, time_ms INTEGER, kind TEXT,"
            " body TEXT, sealed INTEGER, leaf_bytes BLOB, leaf_hash BLOB)"
        )
        # The subject's body (``alternating_rates`` adds ``n``), serialised once: the
        # reference does no work but the database's.
        self._body = json.dumps({**BODY, "n": 0}, sort_keys=True, separators=(",", ":"))
        self._next = 0

    def commit(self) -> None:
        """One row, one durable commit. As many leaf bytes as the subject's sealed leaf
        (format 3, the 512-byte class), fresh for every row as a sealed box is."""
        leaf = os.urandom(SEALED_LEAF_BYTES)
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute(
            "INSERT INTO entry VALUES (?, ?, ?, ?, 1, ?, ?)",
            (
                self._next,
                time.time_ns() // 1_000_000,
                "session.granted",
                self._body,
                leaf,
                os.urandom(32),
            ),
        )
        self._conn.execute("COMMIT")
        self._next += 1

    def close(self) -> None:
        self._conn.close()


async def alternating_rates(store: Store, raw: RawLog, count: int) -> tuple[float, float]:
    """(raw commits/s, durable appends/s) over ``count`` of each, one of each in turn: this
    VM's fsync latency swings several-fold within a second, and alternating every commit
    gives both sides the same disk."""
    clock = time.perf_counter
    raw_s = durable_s = 0.0
    for i in range(count):
        start = clock()
        raw.commit()
        middle = clock()
        await store.append("session.granted", {**BODY, "n": i})
        raw_s += middle - start
        durable_s += clock() - middle
    return count / raw_s, count / durable_s


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


async def run(
    entries: int, appends: int, samples: int, rounds: int, verify_rounds: int
) -> dict[str, float | int]:
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-bench")
    # As gateway.app.wiring seals: to the owner, with the ephemeral keys made ahead.
    seal = SealKeyPool(Sealer(bytes(SigningKey.generate().verify_key)))
    seal.start()
    try:
        with tempfile.TemporaryDirectory(prefix="threshold-bench-") as tmp:
            return await _measure(
                Path(tmp), signer, seal, entries, appends, samples, rounds, verify_rounds
            )
    finally:
        seal.close()


async def _measure(
    directory: Path,
    signer: CheckpointSigner,
    seal: SealKeyPool,
    entries: int,
    appends: int,
    samples: int,
    rounds: int,
    verify_rounds: int,
) -> dict[str, float | int]:
    median = statistics.median
    # Rounds of reference and subject alternating commit by commit (alternating_rates); the
    # median of the rounds' ratios is reported.
    raw_rates, durable_rates = [], []
    raw_log = RawLog(directory / "raw.db")
    store = await Store.open(directory / "durable.db", signer=signer, seal=seal.seal)
    try:
        await alternating_rates(store, raw_log, min(100, appends))  # warm up both files
        for _ in range(rounds):
            raw_rate, durable_rate = await alternating_rates(store, raw_log, appends)
            raw_rates.append(raw_rate)
            durable_rates.append(durable_rate)
    finally:
        await store.close()
        raw_log.close()

    store = await Store.open(
        directory / "big.db", signer=signer, checkpoint_every=CHECKPOINT_EVERY, seal=seal.seal
    )
    try:
        batched = await batched_appends_per_s(store, max(1, appends // 25))
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
            await store.transact(lambda tx: (tx.append("session.granted", BODY), tx.checkpoint()))
            checkpoint_times.append(time.perf_counter() - start)
        final_size = store.tree_size
        await store.checkpoint()
    finally:
        await store.close()
    db_bytes = database_bytes(directory, "big.db")
    workers = default_workers()
    sha_rates, verify_rates, single_rates = [], [], []
    for _ in range(verify_rounds):
        sha_rates.append(raw_sha256_per_s(directory / "big.db")[0])
        verify_rates.append(verify_per_s(directory / "big.db", signer.public_key, workers))
        single_rates.append(verify_per_s(directory / "big.db", signer.public_key, 1))

    def ratio(subject: list[float], reference: list[float]) -> float:
        return round(median(a / b for a, b in zip(subject, reference, strict=True)), 3)

    return {
        "durable_appends_per_s": round(median(durable_rates), 1),
        "raw_sqlite_commits_per_s": round(median(raw_rates), 1),
        "durable_vs_raw": ratio(durable_rates, raw_rates),
        "batched_appends_per_s": round(batched, 1),
        "entries": size,
        "proof_ms_at_1m": round(median(proof_times) * 1000, 3),
        "checkpoint_ms_at_1m": round(median(checkpoint_times) * 1000, 3),
        "db_bytes_per_entry": round(db_bytes / final_size, 1),
        "verify_processes": workers,
        "verify_entries_per_s": round(median(verify_rates), 1),
        "verify_1proc_entries_per_s": round(median(single_rates), 1),
        "raw_sha256_entries_per_s": round(median(sha_rates), 1),
        "verify_vs_raw": ratio(verify_rates, sha_rates),
        "verify_1proc_vs_raw": ratio(single_rates, sha_rates),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="size of the big log")
    parser.add_argument("--appends", type=int, default=500, help="durable appends per round")
    parser.add_argument("--samples", type=int, default=200, help="proofs to time")
    parser.add_argument("--rounds", type=int, default=15, help="append rounds (median)")
    parser.add_argument("--verify-rounds", type=int, default=3, help="verify rounds (median)")
    args = parser.parse_args()
    figures = asyncio.run(
        run(args.entries, args.appends, args.samples, args.rounds, args.verify_rounds)
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
