"""The async store: one SQLite writer connection, reader connections, explicit close.

Shell around the synchronous table code (``audit_log``, ``state``, ``transaction``):

* ONE writer connection, owned by one thread (``store.sqlite_thread``). ``transact(fn)`` runs
  the whole transaction - BEGIN IMMEDIATE, ``fn``, COMMIT - as one function in that thread:
  one executor hop per transaction, not one per statement (about 80 µs each,
  docs/audit-log.md).
* WAL, ``synchronous=FULL`` (a commit that returned is on disk), ``foreign_keys=ON``, a busy
  timeout. The database file is created with mode 0600: it holds lock pairing keys.
* Reads run on a separate read-only connection in a thread of its own, so proofs and queries
  never queue behind appends, and see only committed data.
* ``close()`` is explicit and part of the gateway's shutdown: it closes both connections
  after the work already queued, so the last one out checkpoints the WAL.

Nothing half-written is reported as written: any failure rolls the transaction back, the
in-memory tree frontier is only replaced after COMMIT returns, and it is reloaded from the
database after any failed transaction.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from store import audit_log, commitment_key, merkle
from store.audit_log import CheckedEntry, SqlitePerfectNodes, StoredEntry
from store.checkpoint import CheckpointSigner, SignedCheckpoint
from store.commitment import CommitmentKey
from store.entry import EntrySealer, JsonValue
from store.errors import (
    IdentityMismatch,
    StorageIOError,
    StorageReadOnly,
    StoreClosed,
    StoreError,
)
from store.merkle import MerkleFrontier
from store.migrations import migrate
from store.sqlite_errors import from_sqlite
from store.sqlite_thread import SqliteThread
from store.state import (
    AccessSessionRecord,
    ChallengeOutcome,
    ClipRecord,
    LockPairing,
    RevocationEntry,
    RevocationOutcome,
    RevocationRecord,
    StateTables,
    UseCount,
)
from store.transaction import StoreTransaction

T = TypeVar("T")

DEFAULT_CHECKPOINT_EVERY = 256
DEFAULT_BUSY_TIMEOUT_MS = 5000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Receipt:
    """What a visitor's phone keeps: its entry, a signed checkpoint, and the proof linking them.

    ``checkpoint`` is None for a *pending* receipt (docs/api.md, "Receipts"): the gateway's
    uploads are paced, and the entry is not yet under a scheduled checkpoint; the phone asks
    again (``done``) after the next upload slot for the completed receipt."""

    entry: StoredEntry
    checkpoint: SignedCheckpoint | None
    inclusion_proof: list[bytes]

    def to_json(self) -> dict[str, Any]:
        """The receipt as a phone stores it (hashes and bytes in standard base64)."""
        entry = self.entry.entry
        out: dict[str, Any] = {
            "index": entry.index,
            "time_ms": entry.time_ms,
            "kind": entry.kind,
            "sealed": self.entry.sealed,
            "leaf_bytes": base64.b64encode(self.entry.leaf_bytes).decode("ascii"),
        }
        if self.checkpoint is None:
            out["pending"] = True
            return out
        out["inclusion_proof"] = [base64.b64encode(p).decode("ascii") for p in self.inclusion_proof]
        out["checkpoint"] = self.checkpoint.to_json()
        return out

    def verify(self, gateway_public_key: bytes) -> bool:
        if self.checkpoint is None:
            return False
        cp = self.checkpoint.checkpoint
        return self.checkpoint.verify(gateway_public_key) and merkle.verify_inclusion(
            merkle.leaf_hash(self.entry.leaf_bytes),
            self.entry.entry.index,
            cp.tree_size,
            self.inclusion_proof,
            cp.root_hash,
        )


def _create_private_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    except PermissionError as exc:
        raise StorageReadOnly(f"cannot create the database {path}: {exc.strerror}") from None
    except OSError as exc:
        raise StorageIOError(f"cannot create the database {path}: {exc.strerror}") from None
    os.close(fd)


class Store:
    """The gateway's database. Open with ``await Store.open(path, ...)``; always ``close()``."""

    def __init__(
        self,
        path: Path,
        *,
        signer: CheckpointSigner | None,
        seal: EntrySealer | None,
        checkpoint_every: int,
        clock: Callable[[], int],
        busy_timeout_ms: int,
    ) -> None:
        self.path = path
        self._signer = signer
        self._seal = seal
        self._checkpoint_every = checkpoint_every
        self._clock = clock
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: SqliteThread | None = None
        self._reader: SqliteThread | None = None
        self._frontier = MerkleFrontier()
        self._commitment_key: CommitmentKey | None = None

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        signer: CheckpointSigner | None = None,
        seal: EntrySealer | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        clock: Callable[[], int] = wall_clock_ms,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> Store:
        """Open (creating and migrating if needed) the database at ``path``.

        ``signer`` is the gateway key; without it the store cannot make checkpoints.
        ``seal``, when given, turns each entry's canonical bytes into the sealed bytes the
        tree hashes (see docs/audit-log.md). The commitment key that ties each sealed
        entry's readable copy to its leaf is kept in ``<path>.audit-key`` (made on first
        open; ``store.commitment_key``). A checkpoint is signed every
        ``checkpoint_every`` entries (0: only on demand).
        """
        store = cls(
            Path(path),
            signer=signer,
            seal=seal,
            checkpoint_every=checkpoint_every,
            clock=clock,
            busy_timeout_ms=busy_timeout_ms,
        )
        try:
            await store._connect()
        except BaseException:
            await store.close()
            raise
        return store

    async def _connect(self) -> None:
        try:
            missing = not self.path.exists()
        except OSError as exc:
            raise StorageIOError(f"cannot reach the database {self.path}: {exc.strerror}") from None
        if missing:
            _create_private_file(self.path)
        timeout = self._busy_timeout_ms / 1000
        try:
            self._writer = await SqliteThread.connect(
                str(self.path), busy_timeout_s=timeout, name="store-writer"
            )
        except sqlite3.Error as exc:
            raise from_sqlite(exc, f"open {self.path}") from None
        await self._in_writer(self._setup_writer)
        uri = self.path.resolve().as_uri() + "?mode=ro"
        try:
            self._reader = await SqliteThread.connect(
                uri, uri=True, busy_timeout_s=timeout, name="store-reader"
            )
            await self._in_reader(self._setup_reader)
        except sqlite3.Error as exc:
            raise from_sqlite(exc, f"open a reader on {self.path}") from None

    def _pragmas(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")

    def _setup_writer(self, conn: sqlite3.Connection) -> None:
        self._pragmas(conn)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageReadOnly(f"{self.path}: cannot switch to WAL (journal mode {mode})")
        migrate(conn)
        if self._signer is not None:
            self._claim_identity(conn, self._signer)
        self._frontier = audit_log.load_frontier(conn)
        self._commitment_key = commitment_key.claim(conn, self.path, self._frontier.size)

    def _setup_reader(self, conn: sqlite3.Connection) -> None:
        self._pragmas(conn)
        conn.execute("PRAGMA query_only = ON")

    def _claim_identity(self, conn: sqlite3.Connection, signer: CheckpointSigner) -> None:
        identity = audit_log.gateway_identity(conn)
        if identity is None:
            conn.execute(
                "INSERT INTO gateway_identity (singleton, origin, public_key) VALUES (1, ?, ?)",
                (signer.origin, signer.public_key),
            )
        elif identity != (signer.origin, signer.public_key):
            raise IdentityMismatch(
                f"{self.path} belongs to gateway {identity[0]!r} with a different key; "
                "refusing to sign its log with this one"
            )

    async def _in_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        writer = self._writer
        if writer is None:
            raise StoreClosed("the store is closed")
        try:
            return await writer.run(fn)
        except sqlite3.Error as exc:
            raise from_sqlite(exc, "write") from None

    async def _in_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        reader = self._reader
        if reader is None:
            raise StoreClosed("the store is closed")
        try:
            return await reader.run(fn)
        except sqlite3.Error as exc:
            raise from_sqlite(exc, "read") from None

    async def close(self) -> None:
        """Close every connection (idempotent). Part of the gateway's orderly shutdown."""
        reader, writer = self._reader, self._writer
        self._reader = self._writer = None
        try:
            if reader is not None:
                with contextlib.suppress(sqlite3.Error):
                    await reader.close()
        finally:
            # The writer closes last, whatever happened to the reader: its close is the one
            # that checkpoints the WAL into the database file.
            if writer is not None:
                with contextlib.suppress(sqlite3.Error):
                    await writer.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._writer is None

    @property
    def tree_size(self) -> int:
        """Entries committed so far (as this writer knows them)."""
        return self._frontier.size

    @property
    def gateway_public_key(self) -> bytes | None:
        return None if self._signer is None else self._signer.public_key

    # Transactions --------------------------------------------------------------------------

    async def transact(self, fn: Callable[[StoreTransaction], T]) -> T:
        """Run ``fn`` in one writer transaction (one executor hop) and commit it durably.

        ``fn`` runs in the writer's thread and must not await. If it raises, or the commit
        fails, nothing it wrote is kept and the error (a ``StoreError`` for database
        failures) propagates.
        """
        return await self._in_writer(lambda conn: self._run_transaction(conn, fn))

    def _run_transaction(self, conn: sqlite3.Connection, fn: Callable[[StoreTransaction], T]) -> T:
        try:
            conn.execute("BEGIN IMMEDIATE")
            frontier = self._frontier
            if audit_log.tree_size(conn) != frontier.size:
                # Another writer (a CLI checkpoint, a second process) appended meanwhile.
                frontier = audit_log.load_frontier(conn)
            tx = StoreTransaction(
                conn,
                frontier.copy(),
                signer=self._signer,
                seal=self._seal,
                commitment_key=self._commitment_key,
                checkpoint_every=self._checkpoint_every,
                clock=self._clock,
            )
            result = fn(tx)
            conn.execute("COMMIT")
        except BaseException as exc:
            self._recover(conn)
            if isinstance(exc, sqlite3.Error):
                raise from_sqlite(exc, "transaction") from None
            raise
        self._frontier = tx.frontier
        return result

    def _recover(self, conn: sqlite3.Connection) -> None:
        # After any failure the database, not memory, says what the tree is.
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._frontier = audit_log.load_frontier(conn)
        except (sqlite3.Error, StoreError):
            pass

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the read-only connection inside one read transaction (a snapshot)."""

        def snapshot(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        return await self._in_reader(snapshot)

    async def set_page_limit(self, pages: int) -> int:
        """Cap the database at ``pages`` pages (a quota); return the limit SQLite applied."""

        def apply(conn: sqlite3.Connection) -> int:
            return int(conn.execute(f"PRAGMA max_page_count = {int(pages)}").fetchone()[0])

        return await self._in_writer(apply)

    async def settings(self) -> dict[str, int | str]:
        """The writer connection's durability settings, for diagnostics and tests."""

        def read(conn: sqlite3.Connection) -> dict[str, int | str]:
            return {
                name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }

        return await self._in_writer(read)

    # The audit log -------------------------------------------------------------------------

    async def append(
        self, kind: str, body: Mapping[str, JsonValue], time_ms: int | None = None
    ) -> StoredEntry:
        """Append one entry in its own durable transaction."""
        return await self.transact(lambda tx: tx.append(kind, body, time_ms))

    async def checkpoint(self) -> SignedCheckpoint:
        """Sign a checkpoint of the log as it stands now (on demand)."""
        return await self.transact(lambda tx: tx.checkpoint())

    async def latest_checkpoint(self) -> SignedCheckpoint | None:
        return await self.read(audit_log.latest_checkpoint)

    async def scheduled_checkpoint(self) -> SignedCheckpoint | None:
        """The checkpoint of the paced upload's boundary (docs/privacy.md): the one the relay
        and the witnesses are shown; None before the first upload slot."""

        def read(conn: sqlite3.Connection) -> SignedCheckpoint | None:
            held = StateTables(conn).upload_boundary()
            return None if held is None else audit_log.checkpoint_at(conn, held[0])

        return await self.read(read)

    async def upload_boundary(self) -> tuple[int, int] | None:
        """(boundary, slots closed) of the paced upload; None before the first slot."""
        return await self._state_read(lambda s: s.upload_boundary())

    async def checked_entries(
        self, since: int, limit: int, *, hide_kind: str | None = None
    ) -> list[CheckedEntry]:
        """Entries from ``since`` on (at most ``limit``, none of kind ``hide_kind``), each
        checked against its leaf: what the owner's views show (docs/audit-log.md, "What is
        shown is what is signed")."""
        key = self._commitment_key

        def read(conn: sqlite3.Connection) -> list[CheckedEntry]:
            # Hidden only when the leaf says so too: a row whose readable kind was edited to
            # ``hide_kind`` fails its check and is shown, flagged, like any other edit.
            rows = (
                checked
                for checked in audit_log.iter_checked(conn, key, since)
                if not (
                    hide_kind is not None
                    and checked.verified
                    and checked.stored.entry.kind == hide_kind
                )
            )
            return [checked for checked, _ in zip(rows, range(limit), strict=False)]

        return await self.read(read)

    async def entry(self, index: int) -> StoredEntry | None:
        return await self.read(lambda conn: audit_log.read_entry(conn, index))

    async def root_at(self, size: int) -> bytes:
        return await self.read(lambda conn: merkle.root_at(SqlitePerfectNodes(conn), size))

    async def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        return await self.read(
            lambda conn: merkle.inclusion_proof(SqlitePerfectNodes(conn), index, tree_size)
        )

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return await self.read(
            lambda conn: merkle.consistency_proof(SqlitePerfectNodes(conn), old_size, new_size)
        )

    async def receipt(self, index: int, *, scheduled: bool = False) -> Receipt:
        """Entry ``index`` with a checkpoint covering it (signed now if needed) and its proof.

        ``scheduled`` (the paced upload, docs/privacy.md): only the first scheduled checkpoint
        covering the entry will do, the one the relay is shown too; before its slot has
        closed the receipt is pending (no checkpoint, no proof). A checkpoint signed at the
        visit would give the visit's time and index to whoever the phone shows it to."""
        if scheduled:

            def first(conn: sqlite3.Connection) -> SignedCheckpoint | None:
                row = conn.execute(
                    "SELECT MIN(tree_size) FROM scheduled_checkpoint WHERE tree_size > ?",
                    (index,),
                ).fetchone()
                return None if row[0] is None else audit_log.checkpoint_at(conn, int(row[0]))

            checkpoint = await self.read(first)
        else:
            checkpoint = await self.latest_checkpoint()
            if checkpoint is None or checkpoint.checkpoint.tree_size <= index:
                checkpoint = await self.checkpoint()
        size = None if checkpoint is None else checkpoint.checkpoint.tree_size

        def build(conn: sqlite3.Connection) -> tuple[StoredEntry | None, list[bytes]]:
            stored = audit_log.read_entry(conn, index)
            if stored is None or size is None:
                return stored, []
            return stored, merkle.inclusion_proof(SqlitePerfectNodes(conn), index, size)

        stored, proof = await self.read(build)
        if stored is None:
            raise StoreError(f"the audit log has no entry {index}")
        return Receipt(stored, checkpoint, proof)

    # State ---------------------------------------------------------------------------------

    async def _state_write(self, fn: Callable[[StateTables, int], T]) -> T:
        return await self.transact(lambda tx: fn(tx.state, tx.now_ms()))

    async def _state_read(self, fn: Callable[[StateTables], T]) -> T:
        return await self.read(lambda conn: fn(StateTables(conn)))

    async def consume_use(self, issuer: str, ticket_id: str, max_uses: int) -> UseCount:
        """Atomically count one use of an issuer's ticket; ``granted`` is False once uses run
        out."""
        return await self._state_write(
            lambda s, now: s.consume_use(issuer, ticket_id, max_uses, now)
        )

    async def issue_challenge(self, ttl_ms: int, bound_to: str = "") -> bytes:
        return await self._state_write(lambda s, now: s.issue_challenge(now, ttl_ms, bound_to))

    async def consume_challenge(self, nonce: bytes, bound_to: str = "") -> ChallengeOutcome:
        return await self._state_write(lambda s, now: s.consume_challenge(nonce, now, bound_to))

    async def purge_challenges(self) -> int:
        return await self._state_write(lambda s, now: s.purge_challenges(now))

    async def add_revocations(
        self, seq: int, token: str, entries: list[RevocationEntry]
    ) -> tuple[RevocationOutcome, list[RevocationEntry]]:
        """Add a verified list to the revocations held; the outcome and everything held."""

        def add(s: StateTables, now: int) -> tuple[RevocationOutcome, list[RevocationEntry]]:
            return s.add_revocations(seq, token, entries, now), s.revocation_entries()

        return await self._state_write(add)

    async def revocation_entries(self) -> list[RevocationEntry]:
        return await self._state_read(lambda s: s.revocation_entries())

    async def revocation_list(self) -> RevocationRecord | None:
        return await self._state_read(lambda s: s.revocation_list())

    async def time_floor(self) -> int:
        return await self._state_read(lambda s: s.time_floor())

    async def unclosed_sessions(self) -> list[AccessSessionRecord]:
        return await self._state_read(lambda s: s.unclosed_sessions())

    async def set_lock_pairing(self, door: str, vendor: str, data: bytes) -> None:
        await self._state_write(lambda s, now: s.set_lock_pairing(door, vendor, data, now))

    async def lock_pairing(self, door: str) -> LockPairing | None:
        return await self._state_read(lambda s: s.lock_pairing(door))

    async def add_clip(self, path: str, sha256: bytes, entry_index: int, size_bytes: int) -> None:
        await self._state_write(lambda s, _: s.add_clip(path, sha256, entry_index, size_bytes))

    async def clips_for(self, entry_index: int) -> list[ClipRecord]:
        return await self._state_read(lambda s: s.clips_for(entry_index))

    async def ack_tree_size(self, size: int) -> None:
        await self.transact(lambda tx: tx.ack_tree_size(size))

    async def acked_tree_size(self) -> int:
        return await self._state_read(lambda s: s.acked_tree_size())

    def __repr__(self) -> str:
        state: Any = "closed" if self.closed else f"{self.tree_size} entries"
        return f"<Store {self.path} {state}>"
