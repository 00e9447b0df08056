"""Verifying a whole audit log from its database, trusting nothing stored but the entries.

The verifier recomputes every leaf from the exact hashed bytes, rebuilds the tree, and checks:

1. indexes run 0, 1, 2, ... with none missing;
2. for unsealed entries, the bytes are canonical and say what the index/time/kind/body
   columns say (a sealed entry's plaintext can only be checked with the owner's key);
3. the stored leaf hashes and every stored tree node equal the recomputed ones;
4. every checkpoint is signed by the gateway key, names the gateway, is no larger than the
   log, matches the recomputed root at its size, and is consistent with the checkpoint
   before it (an RFC 9162 consistency proof is built and verified).

A log is only as complete as the last checkpoint a witness has seen: entries after the last
checkpoint are reported as ``unattested_entries``, and a thief who deletes recent entries and
re-signs with another key is caught only when the real key is given (``--gateway-pub``).
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store import audit_log, merkle
from store.entry import canonical_body, decode_entry
from store.errors import InvalidEntry, SchemaTooNew, StoreError
from store.merkle import MemoryTree
from store.migrations import LATEST_VERSION, schema_version
from store.sqlite_errors import from_sqlite


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    checkpoints: int
    unattested_entries: int = 0
    first_bad_index: int | None = None
    problem: str | None = None
    checkpoint_tree_size: int | None = None

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "unattested_entries": self.unattested_entries,
        }
        if not self.ok:
            report["first_bad_index"] = self.first_bad_index
            report["problem"] = self.problem
            if self.checkpoint_tree_size is not None:
                report["checkpoint_tree_size"] = self.checkpoint_tree_size
        return report


class _Failure(Exception):
    def __init__(self, index: int | None, problem: str, checkpoint: int | None = None) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem
        self.checkpoint = checkpoint


def _check_entry_row(row: tuple[Any, ...]) -> bytes:
    idx, time_ms, kind, body, sealed, leaf, stored_hash = row
    leaf = bytes(leaf)
    if not sealed:
        try:
            entry = decode_entry(leaf)
            columns_agree = (
                entry.index == idx
                and entry.time_ms == time_ms
                and entry.kind == kind
                and canonical_body(entry.body).decode("utf-8") == body
            )
        except InvalidEntry as exc:
            raise _Failure(
                idx, f"entry {idx}: hashed bytes are not a canonical entry ({exc})"
            ) from None
        if not columns_agree:
            raise _Failure(idx, f"entry {idx}: stored columns differ from the hashed bytes")
    digest = merkle.leaf_hash(leaf)
    if bytes(stored_hash) != digest:
        raise _Failure(idx, f"entry {idx}: stored leaf hash does not match its bytes")
    return digest


def _rebuild_tree(conn: sqlite3.Connection) -> MemoryTree:
    tree = MemoryTree()
    rows = conn.execute(
        "SELECT idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash FROM audit_entry"
        " ORDER BY idx"
    )
    for row in rows:
        if row[0] != tree.size:
            raise _Failure(tree.size, f"entry {tree.size} is missing")
        tree.append(_check_entry_row(row))
    return tree


def _check_stored_nodes(conn: sqlite3.Connection, tree: MemoryTree) -> None:
    stored_levels = conn.execute("SELECT COALESCE(MAX(level), 0) FROM merkle_node").fetchone()[0]
    for level in range(1, max(tree.height, stored_levels + 1)):
        expected = 0
        rows = conn.execute(
            "SELECT idx, hash FROM merkle_node WHERE level = ? ORDER BY idx", (level,)
        )
        for idx, digest in rows:
            if idx >= tree.level_size(level):
                raise _Failure(
                    tree.size,
                    f"tree node level {level} index {idx} covers entries the log no longer has "
                    f"(the log ends at {tree.size})",
                )
            if idx != expected:
                raise _Failure(
                    expected << level, f"tree node level {level} index {expected} is missing"
                )
            if bytes(digest) != tree.node(level, idx):
                raise _Failure(
                    idx << level, f"tree node level {level} index {idx} does not match entries"
                )
            expected += 1
        if expected != tree.level_size(level):
            raise _Failure(expected << level, f"tree node level {level} index {expected} missing")


def _check_checkpoints(
    conn: sqlite3.Connection, tree: MemoryTree, public_key: bytes | None, origin: str | None
) -> int:
    checkpoints = audit_log.all_checkpoints(conn)
    if checkpoints and public_key is None:
        raise _Failure(0, "no gateway public key in the database or on the command line")
    attested = 0
    previous: tuple[int, bytes] | None = None
    for signed in checkpoints:
        cp = signed.checkpoint
        size = cp.tree_size
        if size > tree.size:
            raise _Failure(
                tree.size,
                f"checkpoint at size {size} covers entries the log no longer has "
                f"(the log ends at {tree.size})",
                size,
            )
        assert public_key is not None
        if not signed.verify(public_key):
            raise _Failure(attested, f"checkpoint at size {size}: bad gateway signature", size)
        if origin is not None and cp.origin != origin:
            raise _Failure(attested, f"checkpoint at size {size} names gateway {cp.origin!r}", size)
        if merkle.root_at(tree, size) != cp.root_hash:
            raise _Failure(
                attested, f"checkpoint at size {size}: root differs from the entries", size
            )
        if previous is not None:
            proof = merkle.consistency_proof(tree, previous[0], size)
            if not merkle.verify_consistency(previous[0], size, previous[1], cp.root_hash, proof):
                raise _Failure(attested, f"checkpoint at size {size} is inconsistent", size)
        previous = (size, cp.root_hash)
        attested = size
    return attested


def verify_log(conn: sqlite3.Connection, public_key: bytes | None = None) -> VerifyReport:
    """Check the whole log on ``conn``. ``public_key`` overrides the key stored in the DB."""
    try:
        identity = audit_log.gateway_identity(conn)
        key = public_key if public_key is not None else (identity[1] if identity else None)
        origin = identity[0] if identity else None
        entries = audit_log.tree_size(conn)
        checkpoints = conn.execute("SELECT COUNT(*) FROM checkpoint").fetchone()[0]
        damage = conn.execute("PRAGMA quick_check").fetchone()[0]
        if damage != "ok":
            return VerifyReport(False, entries, checkpoints, 0, None, f"database damaged: {damage}")
        try:
            tree = _rebuild_tree(conn)
            _check_stored_nodes(conn, tree)
            attested = _check_checkpoints(conn, tree, key, origin)
        except _Failure as failure:
            return VerifyReport(
                False, entries, checkpoints, 0, failure.index, failure.problem, failure.checkpoint
            )
        return VerifyReport(True, tree.size, checkpoints, tree.size - attested)
    except sqlite3.Error as exc:
        raise from_sqlite(exc, "verify the audit log") from None


class _CachedNodes:
    """Stored nodes with the upper levels cached: consecutive proofs share most of them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._nodes = audit_log.SqlitePerfectNodes(conn)
        self._cache: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        if level < 4:
            return self._nodes.node(level, index)
        key = (level, index)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._nodes.node(level, index)
        return found


def export_records(
    conn: sqlite3.Connection, since: int = 0, public_key: bytes | None = None
) -> Iterator[dict[str, Any]]:
    """JSON-ready records: the latest checkpoint, then each entry with its inclusion proof.

    Each entry proves itself: ``leaf_hash(base64-decoded leaf_bytes)`` with
    ``inclusion_proof`` verifies against the checkpoint's root at ``tree_size``. Entries the
    checkpoint does not yet cover carry ``inclusion_proof: null``.
    """

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    identity = audit_log.gateway_identity(conn)
    key = public_key if public_key is not None else (identity[1] if identity else None)
    checkpoint = audit_log.latest_checkpoint(conn)
    covered = 0
    if checkpoint is not None:
        covered = checkpoint.checkpoint.tree_size
        record = {"type": "checkpoint", **checkpoint.to_json()}
        record["public_key"] = None if key is None else b64(key)
        yield record
    nodes = _CachedNodes(conn)
    for stored in audit_log.iter_entries(conn, since):
        index = stored.entry.index
        proof = merkle.inclusion_proof(nodes, index, covered) if index < covered else None
        yield {
            "type": "entry",
            "index": index,
            "time_ms": stored.entry.time_ms,
            "kind": stored.entry.kind,
            "body": stored.entry.body,
            "sealed": stored.sealed,
            "leaf_bytes": b64(stored.leaf_bytes),
            "tree_size": covered if proof is not None else None,
            "inclusion_proof": None if proof is None else [b64(p) for p in proof],
        }


def open_read_only(path: str, *, require_schema: bool = True) -> sqlite3.Connection:
    """A read-only connection for the CLI.

    A missing file, a file that is not SQLite, and (with ``require_schema``) a database that
    Threshold never created or that newer code wrote are each a ``StoreError``.
    """
    file = Path(path)
    if not file.is_file():
        raise StoreError(f"no database at {path}")
    try:
        conn = sqlite3.connect(file.resolve().as_uri() + "?mode=ro", uri=True)
        conn.execute("PRAGMA query_only = ON")
        version = schema_version(conn)
    except sqlite3.Error as exc:
        raise from_sqlite(exc, f"open {path}") from None
    if version > LATEST_VERSION:
        conn.close()
        raise SchemaTooNew(
            f"{path} is at schema version {version}; this Threshold knows up to {LATEST_VERSION}"
        )
    if require_schema and version == 0:
        conn.close()
        raise StoreError(f"{path} is not a Threshold database (it has no schema)")
    return conn
