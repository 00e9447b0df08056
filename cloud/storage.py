"""The relay's storage: plain SQL over one DB-API connection (SQLite here).

Everything the relay keeps goes through this one module, in portable SQL: ``?`` parameters,
``INSERT ... ON CONFLICT DO NOTHING``, no SQLite functions. Moving to PostgreSQL for a fleet
of homes means the schema changes listed in docs/cloud.md (BLOB to BYTEA, identity columns),
``%s`` parameters, and the PRAGMAs in :meth:`RelayStorage.open` dropped.

Synchronous: the relay runs every call in its single storage thread, so calls never
interleave, and a write method is one transaction.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cloud.errors import CloudError
from cloud.witness import Accepted, Witnessed
from store.checkpoint import Checkpoint, Format, SignedCheckpoint, log_origin

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway (
    gateway_id  TEXT PRIMARY KEY,
    public_key  BLOB NOT NULL,
    owner_key   BLOB NOT NULL,
    registered_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log_state (
    gateway_id  TEXT PRIMARY KEY REFERENCES gateway (gateway_id),
    held_size   INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entry (
    gateway_id  TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    sealed      BLOB NOT NULL,
    leaf_hash   BLOB NOT NULL,
    PRIMARY KEY (gateway_id, idx)
);
CREATE TABLE IF NOT EXISTS tree_node (
    gateway_id  TEXT NOT NULL,
    level       INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    PRIMARY KEY (gateway_id, level, idx)
);
CREATE TABLE IF NOT EXISTS witnessed (
    gateway_id  TEXT NOT NULL,
    tree_size   INTEGER NOT NULL,
    root_hash   BLOB NOT NULL,
    time_ms     INTEGER NOT NULL,
    signature   BLOB NOT NULL,
    source      TEXT NOT NULL,
    cosignature BLOB,
    PRIMARY KEY (gateway_id, tree_size, root_hash, source)
);
CREATE TABLE IF NOT EXISTS alarm (
    id          INTEGER PRIMARY KEY,
    gateway_id  TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    code        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_log (
    origin      TEXT PRIMARY KEY,
    vkey        TEXT NOT NULL,
    added_ms    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_latest (
    origin      TEXT PRIMARY KEY,
    origin_hash TEXT NOT NULL UNIQUE,
    tree_size   INTEGER NOT NULL,
    root_hash   BLOB NOT NULL,
    note        TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mailbox (
    id          INTEGER PRIMARY KEY,
    gateway_id  TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    posted_ms   INTEGER NOT NULL
);
"""


class UnknownGateway(CloudError):
    code = "unknown_gateway"


class OwnerMismatch(CloudError):
    code = "owner_mismatch"


@dataclass(frozen=True)
class GatewayRecord:
    gateway_id: str
    public_key: bytes
    owner_key: bytes


@dataclass(frozen=True)
class WitnessedRecord:
    checkpoint: SignedCheckpoint
    source: str
    cosignature: bytes | None


@dataclass(frozen=True)
class Alarm:
    id: int
    gateway_id: str
    time_ms: int
    code: str
    detail: str


@dataclass(frozen=True)
class MailItem:
    """The owner's mail to a gateway: opaque bytes sealed to the gateway's key."""

    id: int
    sealed: bytes
    posted_ms: int


def _signed(
    gateway_id: str, size: int, root: bytes, time_ms: int, signature: bytes
) -> SignedCheckpoint:
    """A witnessed checkpoint from its row: a 68-byte ``signature`` (key ID and Ed25519
    signature) is a C2SP note, a 64-byte one ``threshold-checkpoint/v1``."""
    if len(signature) == 4 + 64:
        note = Checkpoint(log_origin(gateway_id), size, root, time_ms, Format.NOTE)
        return SignedCheckpoint(note, signature[4:], signature[:4])
    legacy = Checkpoint(gateway_id, size, root, time_ms, Format.LEGACY)
    return SignedCheckpoint(legacy, signature)


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


class RelayStorage:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, path: Path) -> RelayStorage:
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.executescript(SCHEMA)
        return cls(conn)

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

    # Gateways --------------------------------------------------------------------------------

    def register_gateway(
        self, gateway_id: str, public_key: bytes, owner_key: bytes, now_ms: int
    ) -> None:
        """Register a gateway, or re-register it with a new key by the same owner."""
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

    def witness_state(self, gateway_id: str) -> tuple[bytes, int] | None:
        """(gateway key, held size), or None for an unknown id: one query either way, so a
        receipt for an unknown gateway costs what one for a registered gateway does."""
        row = self._conn.execute(
            "SELECT g.public_key, s.held_size FROM gateway g"
            " JOIN log_state s ON s.gateway_id = g.gateway_id WHERE g.gateway_id = ?",
            (gateway_id,),
        ).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    # The standard witness (cloud.tlog_witness) -----------------------------------------------

    def add_witness_log(self, origin: str, vkey: str, now_ms: int) -> None:
        """Trust ``vkey`` for ``origin`` (a log that is not one of the registered gateways)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO witness_log (origin, vkey, added_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (origin) DO UPDATE SET vkey = excluded.vkey",
                (origin, vkey, now_ms),
            )

    def witness_log_vkey(self, origin: str) -> str | None:
        """The vkey trusted for a log added by hand."""
        row = self._conn.execute(
            "SELECT vkey FROM witness_log WHERE origin = ?", (origin,)
        ).fetchone()
        return None if row is None else str(row[0])

    def gateway_key_for(self, gateway_id: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT public_key FROM gateway WHERE gateway_id = ?", (gateway_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def witness_latest(self, origin: str) -> tuple[int, bytes, str] | None:
        """(size, root, cosigned note) of the latest checkpoint cosigned for ``origin``."""
        row = self._conn.execute(
            "SELECT tree_size, root_hash, note FROM witness_latest WHERE origin = ?", (origin,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]))

    def witness_latest_by_hash(self, origin_hash: str) -> str | None:
        """The cosigned note served at ``<monitoring prefix>/<origin hash>/checkpoint``."""
        row = self._conn.execute(
            "SELECT note FROM witness_latest WHERE origin_hash = ?", (origin_hash,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_witness_latest(
        self, origin: str, tree_size: int, root: bytes, note: str, now_ms: int
    ) -> None:
        """Persist the origin's latest cosigned checkpoint (before the answer goes out)."""
        digest = hashlib.sha256(origin.encode()).hexdigest()
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO witness_latest"
                " (origin, origin_hash, tree_size, root_hash, note, updated_ms)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET"
                " tree_size = excluded.tree_size, root_hash = excluded.root_hash,"
                " note = excluded.note, updated_ms = excluded.updated_ms",
                (origin, digest, tree_size, root, note, now_ms),
            )

    # The held log ----------------------------------------------------------------------------

    def held_size(self, gateway_id: str) -> int:
        row = self._conn.execute(
            "SELECT held_size FROM log_state WHERE gateway_id = ?", (gateway_id,)
        ).fetchone()
        if row is None:
            raise UnknownGateway(f"gateway {gateway_id!r} is not registered")
        return int(row[0])

    def nodes(self, gateway_id: str) -> StoredNodes:
        return StoredNodes(self._conn, gateway_id)

    def witnessed_for_batch(
        self, gateway_id: str, checkpoint_size: int, low: int, high: int
    ) -> list[Witnessed]:
        rows = self._conn.execute(
            "SELECT tree_size, root_hash, source FROM witnessed WHERE gateway_id = ?"
            " AND (tree_size >= ? OR (tree_size > ? AND tree_size <= ?))"
            " ORDER BY tree_size",
            (gateway_id, checkpoint_size, low, high),
        ).fetchall()
        return [Witnessed(int(r[0]), bytes(r[1]), str(r[2])) for r in rows]

    def witnessed_at(self, gateway_id: str, size: int) -> list[Witnessed]:
        rows = self._conn.execute(
            "SELECT tree_size, root_hash, source FROM witnessed"
            " WHERE gateway_id = ? AND tree_size = ?",
            (gateway_id, size),
        ).fetchall()
        return [Witnessed(int(r[0]), bytes(r[1]), str(r[2])) for r in rows]

    def accept(self, gateway_id: str, accepted: Accepted, cosignature: bytes, now_ms: int) -> None:
        """Write an accepted batch, advance the held size, keep the cosigned checkpoint."""
        with self._transaction() as conn:
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

    def add_witnessed(self, gateway_id: str, checkpoint: SignedCheckpoint, source: str) -> None:
        with self._transaction() as conn:
            self._witness(conn, gateway_id, checkpoint, source, None)

    def _witness(
        self,
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
                signed.key_id + signed.signature,
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
                _signed(gateway_id, int(r[0]), bytes(r[1]), int(r[2]), bytes(r[3])),
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

    def add_alarm(self, gateway_id: str, code: str, detail: str, now_ms: int) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO alarm (gateway_id, time_ms, code, detail) VALUES (?, ?, ?, ?)",
                (gateway_id, now_ms, code, detail),
            )

    def alarms(self, gateway_id: str) -> list[Alarm]:
        rows = self._conn.execute(
            "SELECT id, gateway_id, time_ms, code, detail FROM alarm WHERE gateway_id = ?"
            " ORDER BY id",
            (gateway_id,),
        ).fetchall()
        return [Alarm(int(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]

    def post_mail(self, gateway_id: str, sealed: bytes, now_ms: int) -> int:
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO mailbox (gateway_id, sealed, posted_ms) VALUES (?, ?, ?)",
                (gateway_id, sealed, now_ms),
            )
            return int(cursor.lastrowid or 0)

    def mail_after(self, gateway_id: str, after: int, limit: int) -> list[MailItem]:
        rows = self._conn.execute(
            "SELECT id, sealed, posted_ms FROM mailbox WHERE gateway_id = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (gateway_id, after, limit),
        ).fetchall()
        return [MailItem(int(r[0]), bytes(r[1]), int(r[2])) for r in rows]
