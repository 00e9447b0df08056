"""The audit log's tables: append entries with their tree nodes, sign and read checkpoints.

Synchronous functions over a ``sqlite3.Connection``. The async ``Store`` runs them inside its
writer transactions (one executor hop each); the CLI and readers run them on their own
read-only connections. Every completed perfect subtree is stored (``merkle_node``, level >= 1;
level 0 is ``audit_entry.leaf_hash``), so a root or a proof costs O(log n) primary-key
lookups at any log size; see ``store.merkle``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from store import commitment, merkle
from store.checkpoint import Checkpoint, CheckpointSigner, Format, SignedCheckpoint
from store.commitment import CommitmentKey, RowVerdict
from store.entry import AuditEntry, EntrySealer, JsonValue, encode
from store.errors import NoSigningKey, StorageCorrupt
from store.merkle import MerkleFrontier


@dataclass(frozen=True)
class StoredEntry:
    """An entry as the log holds it: the event, and the exact bytes its leaf hash covers."""

    entry: AuditEntry
    sealed: bool
    leaf_bytes: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class CheckedEntry:
    """A stored entry and whether its readable columns say what its leaf commits to."""

    stored: StoredEntry
    verdict: RowVerdict

    @property
    def verified(self) -> bool:
        return self.verdict.verified

    def to_json(self) -> dict[str, Any]:
        """The form the owner's views show: the entry, and ``verified`` with the reason when
        it is false (docs/api.md, ``GET /v1/owner/events``)."""
        entry = self.stored.entry
        out: dict[str, Any] = {
            "index": entry.index,
            "time_ms": entry.time_ms,
            "kind": entry.kind,
            "body": entry.body,
            "verified": self.verified,
        }
        if not self.verified:
            out["unverified"] = {
                "status": self.verdict.status.value,
                "field": self.verdict.field,
                "detail": self.verdict.detail,
            }
        return out


class SqlitePerfectNodes:
    """``merkle.PerfectNodes`` over the audit tables of one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def node(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self._conn.execute(
                "SELECT leaf_hash FROM audit_entry WHERE idx = ?", (index,)
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT hash FROM merkle_node WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        if row is None:
            raise StorageCorrupt(f"the audit tree has no node at level {level} index {index}")
        return bytes(row[0])


def tree_size(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_entry").fetchone()
    return int(row[0])


def load_frontier(conn: sqlite3.Connection) -> MerkleFrontier:
    return MerkleFrontier.load(SqlitePerfectNodes(conn), tree_size(conn))


_INSERT_NODE = "INSERT INTO merkle_node (level, idx, hash) VALUES (?, ?, ?)"


def insert_entry(
    conn: sqlite3.Connection,
    frontier: MerkleFrontier,
    kind: str,
    body: Mapping[str, JsonValue],
    time_ms: int,
    seal: EntrySealer | None,
    commitment_key: CommitmentKey | None = None,
    visit: bytes | None = None,
) -> StoredEntry:
    """Append one entry at ``frontier.size`` and the tree nodes it completes.

    A sealed entry is in leaf format 3 when ``commitment_key`` is given (``store.commitment``),
    with the visit tag of ``visit`` when the entry belongs to that visitor's session and a
    random one otherwise; in format 1 (the bare sealed box) without a commitment key.
    ``frontier`` is advanced; the caller owns rolling it back if the transaction fails.
    """
    entry = AuditEntry(index=frontier.size, time_ms=time_ms, kind=kind, body=body)
    body_bytes, encoded = encode(entry)
    body_text = body_bytes.decode("utf-8")
    if seal is None:
        leaf = encoded
    elif commitment_key is None:
        leaf = seal(encoded)
    else:
        entry_key, field_tags = commitment.entry_tagger(commitment_key)(
            entry.index, time_ms, kind, body_text
        )
        sealed = seal(commitment.sealed_payload(entry_key, encoded))
        # Every sealed leaf is format 3 (docs/privacy.md): an entry outside any visit gets 16
        # random bytes where a visit's entry has its HMAC tag, so the relay cannot tell from
        # a leaf's first byte or length that it belongs to a visit. Without ``v`` a random
        # tag and a real one look alike; the visitor's own check matches only its own.
        tag = (
            os.urandom(commitment.VISIT_TAG_BYTES)
            if visit is None
            else commitment.visit_tag(visit, entry.index)
        )
        leaf = commitment.format3_leaf(field_tags, tag, sealed)
    digest = merkle.leaf_hash(leaf)
    conn.execute(
        "INSERT INTO audit_entry (idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            entry.index,
            time_ms,
            kind,
            body_text,
            int(seal is not None),
            leaf,
            digest,
        ),
    )
    completed = frontier.append(digest)
    if len(completed) == 1:  # the commonest case; executemany costs more for one row
        node = completed[0]
        conn.execute(_INSERT_NODE, (node.level, node.index, node.hash))
    elif completed:
        conn.executemany(_INSERT_NODE, [(node.level, node.index, node.hash) for node in completed])
    conn.execute("UPDATE time_floor SET time_ms = MAX(time_ms, ?) WHERE singleton = 1", (time_ms,))
    return StoredEntry(entry, seal is not None, leaf, digest)


def insert_checkpoint(
    conn: sqlite3.Connection,
    frontier: MerkleFrontier,
    signer: CheckpointSigner | None,
    time_ms: int,
) -> SignedCheckpoint:
    """Sign the tree as ``frontier`` holds it; reuse the stored one if the size is unchanged."""
    existing = checkpoint_at(conn, frontier.size)
    if existing is not None:
        return existing
    if signer is None:
        raise NoSigningKey("this store was opened without the gateway key; it cannot sign")
    signed = signer.sign(frontier.size, frontier.root(), time_ms)
    cp = signed.checkpoint
    conn.execute(
        "INSERT INTO checkpoint (tree_size, time_ms, origin, root_hash, signature, note_key_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (cp.tree_size, time_ms, cp.origin, cp.root_hash, signed.signature, signed.key_id),
    )
    return signed


def insert_checkpoint_at(
    conn: sqlite3.Connection,
    frontier: MerkleFrontier,
    signer: CheckpointSigner | None,
    size: int,
    time_ms: int,
) -> SignedCheckpoint:
    """Sign the tree's first ``size`` entries (a prefix of the log: the paced upload's
    boundary, docs/privacy.md); reuse the stored one if there is one at that size."""
    if size == frontier.size:
        return insert_checkpoint(conn, frontier, signer, time_ms)
    if not 0 <= size < frontier.size:
        raise StorageCorrupt(f"no prefix of {size} entries in a log of {frontier.size}")
    existing = checkpoint_at(conn, size)
    if existing is not None:
        return existing
    if signer is None:
        raise NoSigningKey("this store was opened without the gateway key; it cannot sign")
    signed = signer.sign(size, merkle.root_at(SqlitePerfectNodes(conn), size), time_ms)
    cp = signed.checkpoint
    conn.execute(
        "INSERT INTO checkpoint (tree_size, time_ms, origin, root_hash, signature, note_key_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (cp.tree_size, time_ms, cp.origin, cp.root_hash, signed.signature, signed.key_id),
    )
    return signed


_SELECT_CHECKPOINT = (
    "SELECT origin, tree_size, root_hash, time_ms, signature, note_key_id FROM checkpoint"
)


def _checkpoint(row: tuple[Any, ...]) -> SignedCheckpoint:
    """A row with a ``note_key_id`` is a signed note; without, ``threshold-checkpoint/v1``."""
    origin, size, root, time_ms, signature, key_id = row
    assert isinstance(origin, str)
    assert isinstance(size, int)
    assert isinstance(time_ms, int)
    if key_id is None:
        legacy = Checkpoint(origin, size, bytes(root), time_ms, Format.LEGACY)
        return SignedCheckpoint(legacy, bytes(signature))
    cp = Checkpoint(origin, size, bytes(root), time_ms, Format.NOTE)
    return SignedCheckpoint(cp, bytes(signature), bytes(key_id))


def checkpoint_at(conn: sqlite3.Connection, size: int) -> SignedCheckpoint | None:
    row = conn.execute(
        _SELECT_CHECKPOINT + " WHERE tree_size = ?",
        (size,),
    ).fetchone()
    return None if row is None else _checkpoint(row)


def latest_checkpoint(conn: sqlite3.Connection) -> SignedCheckpoint | None:
    row = conn.execute(_SELECT_CHECKPOINT + " ORDER BY tree_size DESC LIMIT 1").fetchone()
    return None if row is None else _checkpoint(row)


def all_checkpoints(conn: sqlite3.Connection) -> list[SignedCheckpoint]:
    rows = conn.execute(_SELECT_CHECKPOINT + " ORDER BY tree_size")
    return [_checkpoint(row) for row in rows]


def gateway_identity(conn: sqlite3.Connection) -> tuple[str, bytes] | None:
    """The (origin, public key) the database was created for, if any."""
    row = conn.execute("SELECT origin, public_key FROM gateway_identity").fetchone()
    return None if row is None else (str(row[0]), bytes(row[1]))


def _stored(row: tuple[Any, ...]) -> StoredEntry:
    idx, time_ms, kind, body, sealed, leaf, digest = row
    assert isinstance(idx, int)
    assert isinstance(time_ms, int)
    assert isinstance(kind, str)
    assert isinstance(body, str)
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        raise StorageCorrupt(f"audit entry {idx}: the stored body is not JSON") from None
    entry = AuditEntry(index=idx, time_ms=time_ms, kind=kind, body=parsed)
    return StoredEntry(entry, bool(sealed), bytes(leaf), bytes(digest))


def iter_entries(conn: sqlite3.Connection, since: int = 0) -> Iterator[StoredEntry]:
    """Entries with index >= ``since``, in order, streamed."""
    cursor = conn.execute(
        "SELECT idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash"
        " FROM audit_entry WHERE idx >= ? ORDER BY idx",
        (since,),
    )
    for row in cursor:
        yield _stored(row)


def read_entry(conn: sqlite3.Connection, index: int) -> StoredEntry | None:
    row = conn.execute(
        "SELECT idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash"
        " FROM audit_entry WHERE idx = ?",
        (index,),
    ).fetchone()
    return None if row is None else _stored(row)


def last_entries(conn: sqlite3.Connection, count: int) -> list[StoredEntry]:
    rows = conn.execute(
        "SELECT idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash"
        " FROM audit_entry ORDER BY idx DESC LIMIT ?",
        (count,),
    ).fetchall()
    return [_stored(row) for row in reversed(rows)]


def iter_checked(
    conn: sqlite3.Connection, key: CommitmentKey | None, since: int = 0
) -> Iterator[CheckedEntry]:
    """Entries with index >= ``since``, each checked against its leaf (``store.commitment``).

    A row whose body column is not even JSON is shown with an empty body and flagged.
    """
    cursor = conn.execute(
        "SELECT idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash"
        " FROM audit_entry WHERE idx >= ? ORDER BY idx",
        (since,),
    )
    for row in cursor:
        idx, time_ms, kind, body, sealed, leaf, digest = row
        verdict = commitment.check_row(idx, time_ms, kind, body, sealed, bytes(leaf), key)
        try:
            stored = _stored(row)
        except (StorageCorrupt, AssertionError):
            entry = AuditEntry(
                index=idx,
                time_ms=time_ms if isinstance(time_ms, int) else 0,
                kind=str(kind),
                body={},
            )
            stored = StoredEntry(entry, bool(sealed), bytes(leaf), bytes(digest))
        yield CheckedEntry(stored, verdict)
