"""The relay's SQLite backend: the default, for a household that hosts its own relay.

One file, one connection, one thread: every call runs in that thread, one at a time, and a
write is one ``BEGIN IMMEDIATE`` transaction, so an upload's checks and writes are atomic
(``BEGIN IMMEDIATE`` would keep them so even if a second process opened the file, but the
relay refuses ``--workers`` on SQLite: a fleet goes to PostgreSQL). The witness checks read
tree nodes on demand here (:class:`StoredNodes`), which a synchronous connection allows.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from cloud import migrations, witness
from cloud.errors import CloudError
from cloud.storage import (
    Alarm,
    Backend,
    Cosigner,
    GatewayRecord,
    MailItem,
    NonceClaim,
    NonceReplayed,
    OwnerMismatch,
    StorageError,
    UnknownGateway,
    UploadOutcome,
    WitnessedRecord,
    WitnessStep,
    origin_hash,
    signed_from_row,
    stored_signature,
)
from cloud.wire import UploadBatch, WireReceipt
from cloud.witness import Accepted, Refused, Witnessed
from store.checkpoint import SignedCheckpoint

T = TypeVar("T")


class StoredNodes:
    """``merkle.PerfectNodes`` over one gateway's held tree."""

    def __init__(self, conn: sqlite3.Connection, gateway_id: str) -> None:
        self._conn = conn
        self._gateway = gateway_id

    def node(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self._conn.execute(
                "SELECT leaf_hash FROM entry WHERE gateway_id = ? AND idx = ?",
                (self._gateway, index),
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT hash FROM tree_node WHERE gateway_id = ? AND level = ? AND idx = ?",
                (self._gateway, level, index),
            ).fetchone()
        if row is None:
            raise CloudError(f"relay tree has no node ({level}, {index}) for {self._gateway}")
        return bytes(row[0])


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (``executescript`` would commit mid-transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending.strip() and line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise StorageError("a migration ends in an incomplete statement")


#: How long an opening process waits for another to finish switching the file to WAL.
_WAL_WAIT_S = 10.0


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Switch the database to WAL, waiting for a concurrent opener (``--workers N`` start
    together on one file). SQLite answers a journal-mode change that meets another
    connection's lock with SQLITE_BUSY at once, without the busy handler (it would deadlock
    waiting), so the wait is here: bounded, then the error stands."""
    deadline = time.monotonic() + _WAL_WAIT_S
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


class SqliteLog:
    """The synchronous work, run in :class:`SqliteStorage`'s thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, path: Path, now_ms: int) -> SqliteLog:
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        _enter_wal(conn)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 5000")
        log = cls(conn)
        try:
            log.migrate(now_ms)
        except BaseException:
            conn.close()
            raise
        return log

    def migrate(self, now_ms: int) -> None:
        with self._transaction() as conn:
            conn.execute(migrations.VERSION_TABLE)
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            for step in migrations.pending(Backend.SQLITE, int(row[0] or 0)):
                for statement in _statements(step.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)",
                    (step.version, step.name, now_ms),
                )

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # Gateways --------------------------------------------------------------------------------

    def register_gateway(
        self, gateway_id: str, public_key: bytes, owner_key: bytes, now_ms: int
    ) -> None:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT owner_key FROM gateway WHERE gateway_id = ?", (gateway_id,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO gateway (gateway_id, public_key, owner_key, registered_ms)"
                    " VALUES (?, ?, ?, ?)",
                    (gateway_id, public_key, owner_key, now_ms),
                )
                conn.execute(
                    "INSERT INTO log_state (gateway_id, held_size, updated_ms) VALUES (?, 0, ?)",
                    (gateway_id, now_ms),
                )
            elif bytes(row[0]) != owner_key:
                raise OwnerMismatch(f"gateway {gateway_id} belongs to another owner")
            else:
                conn.execute(
                    "UPDATE gateway SET public_key = ? WHERE gateway_id = ?",
                    (public_key, gateway_id),
                )

    def gateway(self, gateway_id: str) -> GatewayRecord:
        row = self._conn.execute(
            "SELECT public_key, owner_key FROM gateway WHERE gateway_id = ?", (gateway_id,)
        ).fetchone()
        if row is None:
            raise UnknownGateway(f"gateway {gateway_id!r} is not registered")
        return GatewayRecord(gateway_id, bytes(row[0]), bytes(row[1]))

    def held_size(self, gateway_id: str) -> int:
        row = self._conn.execute(
            "SELECT held_size FROM log_state WHERE gateway_id = ?", (gateway_id,)
        ).fetchone()
        if row is None:
            raise UnknownGateway(f"gateway {gateway_id!r} is not registered")
        return int(row[0])

    def claim_nonce(self, nonce: str, expires_ms: int, now_ms: int) -> bool:
        with self._transaction() as conn:
            return self._claim(conn, NonceClaim(nonce, expires_ms), now_ms)

    @staticmethod
    def _claim(conn: sqlite3.Connection, claim: NonceClaim, now_ms: int) -> bool:
        conn.execute("DELETE FROM request_nonce WHERE expires_ms < ?", (now_ms,))
        cursor = conn.execute(
            "INSERT INTO request_nonce (nonce, expires_ms) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (claim.nonce, claim.expires_ms),
        )
        return cursor.rowcount == 1

    # The held log ----------------------------------------------------------------------------

    def upload(
        self,
        gateway_id: str,
        batch: UploadBatch,
        cosign: Cosigner,
        now_ms: int,
        nonce: NonceClaim | None,
    ) -> UploadOutcome:
        with self._transaction() as conn:
            if nonce is not None and not self._claim(conn, nonce, now_ms):
                raise NonceReplayed("request replayed (nonce already used)")
            key = self.gateway(gateway_id).public_key
            held = self.held_size(gateway_id)
            cp_size = batch.checkpoint.checkpoint.tree_size
            rows = conn.execute(
                "SELECT tree_size, root_hash, source FROM witnessed WHERE gateway_id = ?"
                " AND (tree_size >= ? OR (tree_size > ? AND tree_size <= ?))"
                " ORDER BY tree_size",
                (gateway_id, cp_size, held, max(held, batch.end)),
            ).fetchall()
            seen = [Witnessed(int(r[0]), bytes(r[1]), str(r[2])) for r in rows]
            verdict = witness.check_batch(
                batch, gateway_id, key, StoredNodes(conn, gateway_id), held, seen
            )
            if isinstance(verdict, Refused):
                if verdict.finding.is_alarm:
                    self._alarm(conn, gateway_id, verdict, now_ms)
                return UploadOutcome(held, verdict)
            cosignature = cosign(verdict.checkpoint.checkpoint)
            self._accept(conn, gateway_id, verdict, cosignature, now_ms)
            return UploadOutcome(verdict.new_size, cosignature)

    def _accept(
        self,
        conn: sqlite3.Connection,
        gateway_id: str,
        accepted: Accepted,
        cosignature: bytes,
        now_ms: int,
    ) -> None:
        conn.executemany(
            "INSERT INTO entry (gateway_id, idx, sealed, leaf_hash) VALUES (?, ?, ?, ?)",
            [(gateway_id, i, sealed, digest) for i, sealed, digest in accepted.leaves],
        )
        conn.executemany(
            "INSERT INTO tree_node (gateway_id, level, idx, hash) VALUES (?, ?, ?, ?)",
            [(gateway_id, n.level, n.index, n.hash) for n in accepted.nodes],
        )
        conn.execute(
            "UPDATE log_state SET held_size = ?, updated_ms = ? WHERE gateway_id = ?",
            (accepted.new_size, now_ms, gateway_id),
        )
        self._witness(conn, gateway_id, accepted.checkpoint, "gateway", cosignature)

    def witness_receipt(
        self, receipt: WireReceipt, unknown_key: bytes, now_ms: int
    ) -> Refused | None:
        with self._transaction() as conn:
            # An unknown gateway gets a key nobody holds and an empty log, then the same
            # queries and checks: its receipt is refused exactly as a forged one for a
            # registered gateway is, so the answer does not tell which ids exist.
            row = conn.execute(
                "SELECT g.public_key, s.held_size FROM gateway g"
                " JOIN log_state s ON s.gateway_id = g.gateway_id WHERE g.gateway_id = ?",
                (receipt.gateway,),
            ).fetchone()
            key, held = (unknown_key, 0) if row is None else (bytes(row[0]), int(row[1]))
            size = receipt.checkpoint.checkpoint.tree_size
            rows = conn.execute(
                "SELECT tree_size, root_hash, source FROM witnessed"
                " WHERE gateway_id = ? AND tree_size = ?",
                (receipt.gateway, size),
            ).fetchall()
            same = [Witnessed(int(r[0]), bytes(r[1]), str(r[2])) for r in rows]
            refused = witness.check_receipt(
                receipt, key, StoredNodes(conn, receipt.gateway), held, same
            )
            if refused is not None:
                if refused.finding.is_alarm:
                    self._alarm(conn, receipt.gateway, refused, now_ms)
                return refused
            self._witness(conn, receipt.gateway, receipt.checkpoint, "receipt", None)
            return None

    @staticmethod
    def _alarm(conn: sqlite3.Connection, gateway_id: str, refused: Refused, now_ms: int) -> None:
        conn.execute(
            "INSERT INTO alarm (gateway_id, time_ms, code, detail) VALUES (?, ?, ?, ?)",
            (gateway_id, now_ms, refused.finding.value, refused.detail),
        )

    @staticmethod
    def _witness(
        conn: sqlite3.Connection,
        gateway_id: str,
        signed: SignedCheckpoint,
        source: str,
        cosignature: bytes | None,
    ) -> None:
        cp = signed.checkpoint
        conn.execute(
            "INSERT INTO witnessed (gateway_id, tree_size, root_hash, time_ms, signature, source,"
            " cosignature) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                gateway_id,
                cp.tree_size,
                cp.root_hash,
                cp.time_ms,
                stored_signature(signed),
                source,
                cosignature,
            ),
        )

    def witnessed(self, gateway_id: str) -> list[WitnessedRecord]:
        rows = self._conn.execute(
            "SELECT tree_size, root_hash, time_ms, signature, source, cosignature FROM witnessed"
            " WHERE gateway_id = ? ORDER BY tree_size, source",
            (gateway_id,),
        ).fetchall()
        return [
            WitnessedRecord(
                signed_from_row(gateway_id, int(r[0]), bytes(r[1]), int(r[2]), bytes(r[3])),
                str(r[4]),
                None if r[5] is None else bytes(r[5]),
            )
            for r in rows
        ]

    def entries(self, gateway_id: str, since: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._conn.execute(
            "SELECT idx, sealed FROM entry WHERE gateway_id = ? AND idx >= ? ORDER BY idx LIMIT ?",
            (gateway_id, since, limit),
        ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    # Alarms and the mailbox ------------------------------------------------------------------

    # The standard witness (cloud.tlog_witness) -------------------------------------------------

    def add_witness_log(self, origin: str, vkey: str, now_ms: int) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO witness_log (origin, vkey, added_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (origin) DO UPDATE SET vkey = excluded.vkey",
                (origin, vkey, now_ms),
            )

    def witness_log_vkey(self, origin: str) -> str | None:
        row = self._conn.execute(
            "SELECT vkey FROM witness_log WHERE origin = ?", (origin,)
        ).fetchone()
        return None if row is None else str(row[0])

    def witness_add_checkpoint(self, origin: str, step: WitnessStep, now_ms: int) -> None:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT tree_size, root_hash FROM witness_latest WHERE origin = ?", (origin,)
            ).fetchone()
            kept = step(None if row is None else (int(row[0]), bytes(row[1])))
            if kept is not None:
                size, root, note = kept
                conn.execute(
                    "INSERT INTO witness_latest"
                    " (origin, origin_hash, tree_size, root_hash, note, updated_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET"
                    " tree_size = excluded.tree_size, root_hash = excluded.root_hash,"
                    " note = excluded.note, updated_ms = excluded.updated_ms",
                    (origin, origin_hash(origin), size, root, note, now_ms),
                )

    def witness_checkpoint(self, digest: str) -> str | None:
        row = self._conn.execute(
            "SELECT note FROM witness_latest WHERE origin_hash = ?", (digest,)
        ).fetchone()
        return None if row is None else str(row[0])

    def alarms(self, gateway_id: str) -> list[Alarm]:
        rows = self._conn.execute(
            "SELECT id, gateway_id, time_ms, code, detail FROM alarm WHERE gateway_id = ?"
            " ORDER BY id",
            (gateway_id,),
        ).fetchall()
        return [Alarm(int(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]

    def post_mail(self, gateway_id: str, sealed: bytes, now_ms: int) -> int:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM mail WHERE gateway_id = ?", (gateway_id,)
            ).fetchone()
            seq = int(row[0])
            conn.execute(
                "INSERT INTO mail (gateway_id, seq, sealed, posted_ms) VALUES (?, ?, ?, ?)",
                (gateway_id, seq, sealed, now_ms),
            )
            return seq

    def mail_after(self, gateway_id: str, after: int, limit: int) -> list[MailItem]:
        rows = self._conn.execute(
            "SELECT seq, sealed, posted_ms FROM mail WHERE gateway_id = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (gateway_id, after, limit),
        ).fetchall()
        return [MailItem(int(r[0]), bytes(r[1]), int(r[2])) for r in rows]


class SqliteStorage:
    """:class:`cloud.storage.RelayStorage` over :class:`SqliteLog` in one thread."""

    def __init__(self, log: SqliteLog, thread: ThreadPoolExecutor) -> None:
        self._log = log
        self._thread = thread

    @classmethod
    async def open(cls, path: Path, now_ms: int = 0) -> SqliteStorage:
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-sqlite")
        loop = asyncio.get_running_loop()
        try:
            log = await loop.run_in_executor(thread, SqliteLog.open, path, now_ms)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(log, thread)

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn)
        except sqlite3.Error as exc:
            raise StorageError(f"relay database: {exc}") from exc

    async def ready(self) -> None:
        await self._call(self._log.schema_version)

    async def close(self) -> None:
        await self._call(self._log.close)
        self._thread.shutdown(wait=True)

    async def schema_version(self) -> int:
        return await self._call(self._log.schema_version)

    async def register_gateway(
        self, gateway_id: str, public_key: bytes, owner_key: bytes, now_ms: int
    ) -> None:
        await self._call(
            lambda: self._log.register_gateway(gateway_id, public_key, owner_key, now_ms)
        )

    async def gateway(self, gateway_id: str) -> GatewayRecord:
        return await self._call(lambda: self._log.gateway(gateway_id))

    async def held_size(self, gateway_id: str) -> int:
        return await self._call(lambda: self._log.held_size(gateway_id))

    async def claim_nonce(self, nonce: str, expires_ms: int, now_ms: int) -> bool:
        return await self._call(lambda: self._log.claim_nonce(nonce, expires_ms, now_ms))

    async def upload(
        self,
        gateway_id: str,
        batch: UploadBatch,
        cosign: Cosigner,
        now_ms: int,
        nonce: NonceClaim | None = None,
    ) -> UploadOutcome:
        return await self._call(lambda: self._log.upload(gateway_id, batch, cosign, now_ms, nonce))

    async def witness_receipt(
        self, receipt: WireReceipt, unknown_key: bytes, now_ms: int
    ) -> Refused | None:
        return await self._call(lambda: self._log.witness_receipt(receipt, unknown_key, now_ms))

    async def entries(self, gateway_id: str, since: int, limit: int) -> list[tuple[int, bytes]]:
        return await self._call(lambda: self._log.entries(gateway_id, since, limit))

    async def witnessed(self, gateway_id: str) -> list[WitnessedRecord]:
        return await self._call(lambda: self._log.witnessed(gateway_id))

    async def alarms(self, gateway_id: str) -> list[Alarm]:
        return await self._call(lambda: self._log.alarms(gateway_id))

    async def post_mail(self, gateway_id: str, sealed: bytes, now_ms: int) -> int:
        return await self._call(lambda: self._log.post_mail(gateway_id, sealed, now_ms))

    async def mail_after(self, gateway_id: str, after: int, limit: int) -> list[MailItem]:
        return await self._call(lambda: self._log.mail_after(gateway_id, after, limit))

    async def add_witness_log(self, origin: str, vkey: str, now_ms: int) -> None:
        await self._call(lambda: self._log.add_witness_log(origin, vkey, now_ms))

    async def witness_log_vkey(self, origin: str) -> str | None:
        return await self._call(lambda: self._log.witness_log_vkey(origin))

    async def witness_add_checkpoint(self, origin: str, step: WitnessStep, now_ms: int) -> None:
        await self._call(lambda: self._log.witness_add_checkpoint(origin, step, now_ms))

    async def witness_checkpoint(self, origin_hash: str) -> str | None:
        return await self._call(lambda: self._log.witness_checkpoint(origin_hash))
