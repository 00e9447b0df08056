"""Verifying a whole audit log from its database, trusting nothing stored but the entries.

The verifier recomputes every leaf from the exact hashed bytes, rebuilds the tree, and checks:

1. indexes run 0, 1, 2, ... with none missing;
2. every row's readable columns (time, kind, body, the sealed flag) say what its leaf says:
   an unsealed leaf is those columns' canonical bytes; a sealed leaf in format 2 carries a
   keyed commitment to each field, checked with the gateway's commitment key
   (``store.commitment``); a sealed leaf in format 1 (before commitments) is counted as
   ``unchecked_plaintext``, and none may follow the switch to format 2;
3. the stored leaf hashes and every stored tree node equal the recomputed ones;
4. every checkpoint is signed by the gateway key, names the gateway, is no larger than the
   log, matches the recomputed root at its size, and is consistent with the checkpoint
   before it (an RFC 9162 consistency proof is built and verified);
5. the clip index agrees with the verified ``clip.recorded`` entries, and every clip not
   recorded as deleted is on disk with the SHA-256 its entry names.

A failure names the first bad index and the field (or the clip file).

A log is only as complete as the last checkpoint a witness has seen: entries after the last
checkpoint are reported as ``unattested_entries``, and a thief who deletes recent entries and
re-signs with another key is caught only when the real key is given (``--gateway-pub``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store import audit_log, commitment, commitment_key, merkle
from store.commitment import CommitmentKey, RowStatus
from store.errors import CommitmentKeyError, SchemaTooNew, StoreError
from store.merkle import MemoryTree
from store.migrations import LATEST_VERSION, schema_version
from store.sqlite_errors import from_sqlite

#: The schema version that brought plaintext commitments (``audit_commitment_key``).
COMMITMENT_VERSION = 4


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    checkpoints: int
    unattested_entries: int = 0
    first_bad_index: int | None = None
    problem: str | None = None
    checkpoint_tree_size: int | None = None
    #: The stored column (or ``leaf_bytes``, ``leaf_hash``, ``sealed``) found wrong.
    field: str | None = None
    #: The clip file found missing or changed.
    clip: str | None = None
    #: Sealed entries in leaf format 1 (before commitments): their plaintext copies can be
    #: checked only with the owner's key.
    unchecked_plaintext: int = 0
    clips: int = 0

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "unattested_entries": self.unattested_entries,
            "unchecked_plaintext": self.unchecked_plaintext,
            "clips": self.clips,
        }
        if not self.ok:
            report["first_bad_index"] = self.first_bad_index
            report["problem"] = self.problem
            for name in ("checkpoint_tree_size", "field", "clip"):
                if getattr(self, name) is not None:
                    report[name] = getattr(self, name)
        return report


class _Failure(Exception):
    def __init__(
        self,
        index: int | None,
        problem: str,
        checkpoint: int | None = None,
        *,
        field: str | None = None,
        clip: str | None = None,
    ) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem
        self.checkpoint = checkpoint
        self.field = field
        self.clip = clip


@dataclass
class _Scan:
    """What the entry scan learns on the way: the tree, and the verified clip entries."""

    tree: MemoryTree
    unchecked: int = 0
    #: clip.recorded entries: index -> (path, sha256 hex, size)
    recorded: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)


def _clip_facts(scan: _Scan, idx: int, kind: str, body: str) -> None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return
    if kind == "clip.recorded":
        path, digest, size = parsed.get("path"), parsed.get("sha256"), parsed.get("size_bytes")
        if isinstance(path, str) and isinstance(digest, str) and isinstance(size, int):
            scan.recorded[idx] = (path, digest, size)
    elif isinstance(parsed.get("recorded_entry"), int):
        scan.deleted.add(parsed["recorded_entry"])


@dataclass
class _Part:
    """What the scan of one range of entries learns (what a worker process sends back)."""

    #: The perfect levels over the range's leaf hashes (merkle.perfect_levels).
    levels: list[bytearray]
    unchecked: int = 0
    recorded: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    #: The range's first failure as data (index, problem, field): a worker cannot raise it.
    failure: tuple[int | None, str, str | None] | None = None


def _scan_range(
    conn: sqlite3.Connection,
    key: CommitmentKey | None,
    committed_from: int | None,
    key_problem: str | None,
    start: int = 0,
    end: int | None = None,
) -> _Part:
    """Check the entries ``start <= idx < end`` (every entry without ``end``), in order."""
    if end is None:
        rows = conn.execute(
            "SELECT idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash FROM audit_entry"
            " ORDER BY idx"
        )
    else:
        rows = conn.execute(
            "SELECT idx, time_ms, kind, body, sealed, leaf_bytes, leaf_hash FROM audit_entry"
            " WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        )
    scan = _Scan(MemoryTree())
    # The hot loop of a million rows: the committed rows that verify take the fast path
    # (commitment.fast_row_check); everything else, and every failure, goes through
    # check_row, which names the field. Leaf hashes are collected in one buffer and the tree
    # levels are built from it afterwards (merkle.perfect_levels).
    fast = None if key is None else commitment.fast_row_check(key)
    sha256 = hashlib.sha256
    clip_kinds = ("clip.recorded", "clip.deleted")
    leaves = bytearray()
    expected = start
    for idx, time_ms, kind, body, sealed, leaf, stored_hash in rows:
        if idx != expected:
            raise _Failure(expected, f"entry {expected} is missing", field="index")
        if type(leaf) is not bytes:
            leaf = bytes(leaf)
        if fast is None or not fast(idx, time_ms, kind, body, sealed, leaf):
            _slow_row(
                scan, idx, time_ms, kind, body, sealed, leaf, key, committed_from, key_problem
            )
        elif kind in clip_kinds:
            _clip_facts(scan, idx, kind, body)
        digest = sha256(b"\x00" + leaf).digest()
        if stored_hash != digest:
            raise _Failure(
                idx, f"entry {idx}: stored leaf hash does not match its bytes", field="leaf_hash"
            )
        leaves += digest
        expected += 1
    if end is not None and expected != end:
        raise _Failure(expected, f"entry {expected} is missing", field="index")
    return _Part(merkle.perfect_levels(leaves), scan.unchecked, scan.recorded, scan.deleted)


def _scan_part(
    job: tuple[str, CommitmentKey | None, int | None, str | None, int, int],
) -> _Part:
    """A worker process's share of the scan: its own read-only connection, one range."""
    uri, key, committed_from, key_problem, start, end = job
    conn = sqlite3.connect(uri, uri=True)
    try:
        conn.execute("PRAGMA query_only = ON")
        try:
            return _scan_range(conn, key, committed_from, key_problem, start, end)
        except _Failure as failure:
            return _Part([], failure=(failure.index, failure.problem, failure.field))
    finally:
        conn.close()


#: Below this many entries one process verifies faster than starting others.
PARALLEL_FROM = 1 << 16
#: The smallest range a worker is given (a power of two: ranges start at multiples of their
#: size, so the tree levels a worker builds are the whole tree's nodes over its range).
_MIN_RANGE_BITS = 14


def default_workers() -> int:
    """How many processes ``audit verify`` uses: the CPUs this process may use, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def _ranges(size: int, workers: int) -> list[tuple[int, int]]:
    """About four ranges per worker (a shared machine evens out), each a power of two long
    and aligned to its length, the last one shorter."""
    bits = max(_MIN_RANGE_BITS, (size // (4 * workers)).bit_length() - 1)
    step = 1 << bits
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def _parallel_scan(
    conn: sqlite3.Connection,
    database: Path,
    key: CommitmentKey | None,
    committed_from: int | None,
    key_problem: str | None,
    workers: int,
) -> _Scan | None:
    """The scan split over ``workers`` processes by index range; None when it cannot be
    (then the caller scans in this process: every check is made either way)."""
    count, low, high = conn.execute(
        "SELECT COUNT(*), MIN(idx), MAX(idx) FROM audit_entry"
    ).fetchone()
    if count < PARALLEL_FROM or low != 0 or high != count - 1:
        return None  # small, or indexes with a gap: the sequential scan names the gap
    import concurrent.futures
    import multiprocessing

    uri = database.resolve().as_uri() + "?mode=ro"
    jobs = [
        (uri, key, committed_from, key_problem, start, end)
        for start, end in _ranges(count, workers)
    ]
    try:
        # spawn, not fork: verify_log may run inside a threaded process (the gateway).
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            parts = list(pool.map(_scan_part, jobs))
    except (OSError, concurrent.futures.process.BrokenProcessPool):
        return None
    scan = _Scan(MemoryTree())
    for part in parts:
        if part.failure is not None:
            index, problem, name = part.failure
            raise _Failure(index, problem, field=name)
        scan.unchecked += part.unchecked
        scan.recorded.update(part.recorded)
        scan.deleted |= part.deleted
    height = len(parts[0].levels)
    joined = [
        b"".join(part.levels[level] for part in parts if level < len(part.levels))
        for level in range(height)
    ]
    scan.tree = MemoryTree.from_levels(joined)
    return scan


def _scan_entries(
    conn: sqlite3.Connection,
    key: CommitmentKey | None,
    committed_from: int | None,
    key_problem: str | None = None,
    *,
    database: Path | None = None,
    workers: int = 1,
) -> _Scan:
    if workers > 1 and database is not None:
        scan = _parallel_scan(conn, database, key, committed_from, key_problem, workers)
        if scan is not None:
            return scan
    part = _scan_range(conn, key, committed_from, key_problem)
    scan = _Scan(MemoryTree.from_levels(part.levels), part.unchecked)
    scan.recorded, scan.deleted = part.recorded, part.deleted
    return scan


def _slow_row(
    scan: _Scan,
    idx: int,
    time_ms: object,
    kind: object,
    body: object,
    sealed: object,
    leaf: bytes,
    key: CommitmentKey | None,
    committed_from: int | None,
    key_problem: str | None,
) -> None:
    """One row off the fast path: checked by check_row, which names what is wrong."""
    verdict = commitment.check_row(idx, time_ms, kind, body, sealed, leaf, key)
    if verdict.status is RowStatus.MISMATCH:
        raise _Failure(idx, f"entry {idx}: {verdict.field} {verdict.detail}", field=verdict.field)
    if verdict.status is RowStatus.UNCHECKABLE:
        form = commitment.leaf_form(leaf)
        if key is None and form is not None and form.committed:
            raise _Failure(
                idx,
                f"entry {idx}: cannot check its readable copy: "
                f"{key_problem or 'no commitment key'}",
                field="commitment_key",
            )
        if committed_from is not None and idx >= committed_from:
            raise _Failure(
                idx,
                f"entry {idx}: sealed without a plaintext commitment after the log "
                f"switched to leaf format 2 at {committed_from}",
                field="leaf_bytes",
            )
        scan.unchecked += 1
    elif kind in ("clip.recorded", "clip.deleted"):
        assert isinstance(kind, str)
        assert isinstance(body, str)
        _clip_facts(scan, idx, kind, body)


def _file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _check_clips(conn: sqlite3.Connection, scan: _Scan, files: bool) -> int:
    """The clip index agrees with the verified ``clip.recorded`` entries, and (``files``)
    every clip not recorded as deleted is on disk with the hash its entry names."""
    rows = conn.execute("SELECT path, sha256, entry_index, size_bytes FROM clip ORDER BY path")
    for path, sha256, entry_index, size in rows:
        recorded = scan.recorded.get(entry_index)
        if recorded is None:
            raise _Failure(
                entry_index,
                f"clip {path}: its index row names entry {entry_index}, which is no verified "
                "clip.recorded entry",
                field="entry_index",
                clip=path,
            )
        for name, stored, signed in (
            ("path", path, recorded[0]),
            ("sha256", bytes(sha256).hex(), recorded[1]),
            ("size_bytes", size, recorded[2]),
        ):
            if stored != signed:
                raise _Failure(
                    entry_index,
                    f"clip {path}: the index's {name} differs from clip.recorded entry "
                    f"{entry_index}",
                    field=name,
                    clip=path,
                )
    if files:
        for index, (path, digest, _) in sorted(scan.recorded.items()):
            if index in scan.deleted:
                continue
            found = _file_sha256(Path(path))
            if found is None:
                raise _Failure(index, f"clip {path} is missing", field="clip_file", clip=path)
            if found != digest:
                raise _Failure(
                    index,
                    f"clip {path} was changed (its SHA-256 differs from entry {index})",
                    field="clip_file",
                    clip=path,
                )
    return len(scan.recorded) - len(scan.deleted & scan.recorded.keys())


def _level_matches(conn: sqlite3.Connection, tree: MemoryTree, level: int) -> bool:
    """Fast path: the stored level, in index order, is exactly the recomputed one (indexes
    0..n-1 and the same bytes). False sends the level through the node-by-node check."""
    count = 0
    parts: list[bytes] = []
    for idx, digest in conn.execute(
        "SELECT idx, hash FROM merkle_node WHERE level = ? ORDER BY idx", (level,)
    ):
        if idx != count or type(digest) is not bytes:
            return False
        parts.append(digest)
        count += 1
    return count == tree.level_size(level) and b"".join(parts) == tree.level_bytes(level)


def _check_stored_nodes(conn: sqlite3.Connection, tree: MemoryTree) -> None:
    stored_levels = conn.execute("SELECT COALESCE(MAX(level), 0) FROM merkle_node").fetchone()[0]
    for level in range(1, max(tree.height, stored_levels + 1)):
        if _level_matches(conn, tree, level):
            continue
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
        if origin is not None and cp.gateway_id != origin:
            raise _Failure(attested, f"checkpoint at size {size} names origin {cp.origin!r}", size)
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


def database_file(conn: sqlite3.Connection) -> Path | None:
    """The file behind ``conn``'s main database (None for an in-memory one)."""
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file)
    return None


def verify_log(
    conn: sqlite3.Connection,
    public_key: bytes | None = None,
    *,
    key_file: Path | None = None,
    clip_files: bool = True,
    workers: int = 1,
) -> VerifyReport:
    """Check the whole log on ``conn``. ``public_key`` overrides the key stored in the DB;
    ``key_file`` the commitment key's file (default: beside the database); ``clip_files``
    False skips hashing the clip files (the clip index is still checked). ``workers`` > 1
    checks the entries of a large log in that many processes, by index range (the same
    checks; the first bad index is still the one named)."""
    # One read snapshot for everything (the gateway may be appending meanwhile): entries
    # never change once written, so workers reading ranges of it see the same rows.
    began = not conn.in_transaction
    try:
        if began:
            conn.execute("BEGIN")
    except sqlite3.Error as exc:
        raise from_sqlite(exc, "verify the audit log") from None
    try:
        return _verify_log(conn, public_key, key_file, clip_files, workers)
    finally:
        if began and conn.in_transaction:
            conn.execute("ROLLBACK")


def _verify_log(
    conn: sqlite3.Connection,
    public_key: bytes | None,
    key_file: Path | None,
    clip_files: bool,
    workers: int,
) -> VerifyReport:
    try:
        entries = audit_log.tree_size(conn)
        checkpoints = conn.execute("SELECT COUNT(*) FROM checkpoint").fetchone()[0]
        database = database_file(conn)
        # The file's integrity is checked while the entries are: a damaged file is reported
        # as such whatever else was found (or raised) meanwhile, as when it came first.
        with _QuickCheck(conn, database) as quick:
            try:
                report = _checked_log(conn, public_key, key_file, clip_files, workers, database)
            except sqlite3.Error:
                if quick.result() == "ok":
                    raise
            damage = quick.result()
        if damage != "ok":
            return VerifyReport(False, entries, checkpoints, 0, None, f"database damaged: {damage}")
        return report
    except sqlite3.Error as exc:
        raise from_sqlite(exc, "verify the audit log") from None


class _QuickCheck:
    """``PRAGMA quick_check`` of the database file, on a read-only connection in a thread of
    its own, while the caller checks the entries: SQLite leaves Python's GIL while it works,
    so with a core to spare it costs no wall time (it is about a tenth of ``audit verify`` at
    a million entries). An in-memory database, or one a second connection cannot open, is
    checked on ``conn`` when the result is asked for. Use as a context manager: the thread
    is always waited for."""

    def __init__(self, conn: sqlite3.Connection, database: Path | None) -> None:
        import concurrent.futures

        self._conn = conn
        self._result: str | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._future: concurrent.futures.Future[str | None] | None = None
        if database is not None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="threshold-quick-check"
            )
            self._future = self._pool.submit(_quick_check_file, database)

    def __enter__(self) -> _QuickCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def result(self) -> str:
        """The file's verdict: "ok" or what SQLite found wrong (raises as the pragma does)."""
        if self._result is None:
            found = None if self._future is None else self._future.result()
            if found is None:
                found = str(self._conn.execute("PRAGMA quick_check").fetchone()[0])
            self._result = found
        return self._result


def _quick_check_file(database: Path) -> str | None:
    try:
        conn = sqlite3.connect(database.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return None  # checked on the caller's connection instead
    try:
        return str(conn.execute("PRAGMA quick_check").fetchone()[0])
    except sqlite3.OperationalError:
        return None  # could not read here (not damage): likewise
    finally:
        conn.close()


def _checked_log(
    conn: sqlite3.Connection,
    public_key: bytes | None,
    key_file: Path | None,
    clip_files: bool,
    workers: int,
    database: Path | None,
) -> VerifyReport:
    """Every check but the file's own integrity (``_QuickCheck``)."""
    identity = audit_log.gateway_identity(conn)
    key = public_key if public_key is not None else (identity[1] if identity else None)
    origin = identity[0] if identity else None
    entries = audit_log.tree_size(conn)
    checkpoints = conn.execute("SELECT COUNT(*) FROM checkpoint").fetchone()[0]
    commit_key: CommitmentKey | None = None
    committed_from: int | None = None
    key_problem: str | None = None
    if schema_version(conn) >= COMMITMENT_VERSION:
        # A missing or wrong key matters only if a sealed format-2 row needs it; the
        # scan then names that row and this reason.
        record = commitment_key.recorded(conn)
        committed_from = None if record is None else record[1]
        try:
            if database is None and key_file is None:
                raise CommitmentKeyError("an in-memory database has no commitment key file")
            commit_key = commitment_key.for_reading(conn, database or Path("."), key_file)[0]
        except CommitmentKeyError as exc:
            key_problem = exc.message
    try:
        scan = _scan_entries(
            conn, commit_key, committed_from, key_problem, database=database, workers=workers
        )
        tree = scan.tree
        _check_stored_nodes(conn, tree)
        attested = _check_checkpoints(conn, tree, key, origin)
        clips = _check_clips(conn, scan, clip_files)
    except _Failure as failure:
        return VerifyReport(
            False,
            entries,
            checkpoints,
            0,
            failure.index,
            failure.problem,
            failure.checkpoint,
            failure.field,
            failure.clip,
        )
    return VerifyReport(
        True,
        tree.size,
        checkpoints,
        tree.size - attested,
        unchecked_plaintext=scan.unchecked,
        clips=clips,
    )


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


def reading_key(conn: sqlite3.Connection, key_file: Path | None = None) -> CommitmentKey | None:
    """The commitment key the readers (tail, export) check rows with; None before schema 5
    or when the database never had one. A recorded key whose file is wrong raises."""
    if schema_version(conn) < COMMITMENT_VERSION:
        return None
    database = database_file(conn)
    if database is None and key_file is None:
        return None
    return commitment_key.for_reading(conn, database or Path("."), key_file)[0]


def export_records(
    conn: sqlite3.Connection,
    since: int = 0,
    public_key: bytes | None = None,
    commit_key: CommitmentKey | None = None,
) -> Iterator[dict[str, Any]]:
    """JSON-ready records: the latest checkpoint, then each entry with its inclusion proof.

    Each entry proves itself: ``leaf_hash(base64-decoded leaf_bytes)`` with
    ``inclusion_proof`` verifies against the checkpoint's root at ``tree_size``. Entries the
    checkpoint does not yet cover carry ``inclusion_proof: null``. ``verified`` says whether
    the readable fields were checked against the leaf (``store.commitment``).
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
    for checked in audit_log.iter_checked(conn, commit_key, since):
        stored = checked.stored
        index = stored.entry.index
        proof = merkle.inclusion_proof(nodes, index, covered) if index < covered else None
        yield {
            "type": "entry",
            **checked.to_json(),
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
