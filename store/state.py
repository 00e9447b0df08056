"""The state that makes offline decisions safe, as synchronous operations on one connection.

Ticket use counts, single-use challenges, the revocations held, the time floor,
access sessions, lock pairings, the clip index, the sync cursor and cloud cosignatures. The
``Store`` runs these inside its writer transactions, where BEGIN IMMEDIATE and the single
writer make each read-then-write atomic; every rule that matters is also a constraint or a
trigger in the schema, so a second process cannot break it either.
"""

from __future__ import annotations

import enum
import os
import sqlite3
from dataclasses import dataclass

from store.errors import DoorBusy, IntegrityViolation

NONCE_BYTES = 32


@dataclass(frozen=True)
class UseCount:
    """The answer of ``consume_use``: whether this use was granted, and the count after it."""

    granted: bool
    uses: int
    max_uses: int


class ChallengeOutcome(enum.Enum):
    CONSUMED = "consumed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    ALREADY_USED = "already_used"
    WRONG_BINDING = "wrong_binding"


class RevocationOutcome(enum.Enum):
    STORED = "stored"  # an entry was added or kept for longer
    DUPLICATE = "duplicate"  # nothing new: every entry was held already, as long


@dataclass(frozen=True)
class RevocationRecord:
    """The newest list received (highest ``seq``): kept to report, never to decide."""

    seq: int
    token: str
    stored_ms: int


@dataclass(frozen=True)
class RevocationEntry:
    """One thing revoked: ``kind`` is ``jti``, ``sub`` or ``keys``; held until ``until_ms``."""

    kind: str
    value: str
    until_ms: int


# An expired revocation is purged this long after the time floor passed it: by then every
# ticket it could have covered is refused as expired, and the table does not grow for ever.
REVOCATION_PURGE_AFTER_MS = 86_400_000


@dataclass(frozen=True)
class AccessSessionRecord:
    session_id: str
    door: str
    ticket_id: str | None
    state: str
    terminal: bool
    opened_ms: int
    updated_ms: int


@dataclass(frozen=True)
class SessionTransition:
    seq: int
    state: str
    time_ms: int
    audit_index: int | None


@dataclass(frozen=True)
class LockPairing:
    door: str
    vendor: str
    data: bytes
    updated_ms: int


@dataclass(frozen=True)
class ClipRecord:
    path: str
    sha256: bytes
    entry_index: int
    size_bytes: int


class StateTables:
    """Operations on the state tables of one connection, inside a caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # Ticket uses ---------------------------------------------------------------------------

    def consume_use(self, issuer: str, ticket_id: str, max_uses: int, now_ms: int) -> UseCount:
        """Count one use of ticket ``ticket_id`` of ``issuer`` (its signing key's id) if fewer
        than ``max_uses`` were counted before.

        Keyed on the issuer and the ticket id, never on the token text, and never on the id
        alone: another issuer reusing the id counts its own uses. The lower of the stored and
        the given limit applies, so a re-issued copy cannot raise it. A count kept from before
        issuers were recorded (issuer '') counts against every issuer's ticket of that id.
        """
        if max_uses < 1:
            raise IntegrityViolation(f"max_uses must be >= 1, not {max_uses}")
        if not issuer:
            raise IntegrityViolation("a ticket use needs its issuer")
        legacy = self._conn.execute(
            "SELECT uses FROM ticket_use WHERE issuer = '' AND ticket_id = ?", (ticket_id,)
        ).fetchone()
        before = 0 if legacy is None else int(legacy[0])
        row = self._conn.execute(
            "INSERT INTO ticket_use (issuer, ticket_id, uses, max_uses, last_ms)"
            " SELECT ?, ?, 1, ?, ? WHERE ? < ?"
            " ON CONFLICT (issuer, ticket_id) DO UPDATE SET uses = uses + 1,"
            " last_ms = excluded.last_ms, max_uses = MIN(max_uses, excluded.max_uses)"
            " WHERE uses + ? < MIN(max_uses, excluded.max_uses)"
            " RETURNING uses, max_uses",
            (issuer, ticket_id, max_uses, now_ms, before, max_uses, before),
        ).fetchone()
        if row is not None:
            return UseCount(True, before + int(row[0]), int(row[1]))
        used = self._conn.execute(
            "SELECT uses, max_uses FROM ticket_use WHERE issuer = ? AND ticket_id = ?",
            (issuer, ticket_id),
        ).fetchone()
        if used is None:
            return UseCount(False, before, max_uses)
        return UseCount(False, before + int(used[0]), min(int(used[1]), max_uses))

    def uses(self, issuer: str, ticket_id: str) -> int:
        """Uses counted for this issuer's ticket, including any count kept from before."""
        row = self._conn.execute(
            "SELECT COALESCE(SUM(uses), 0) FROM ticket_use"
            " WHERE ticket_id = ? AND issuer IN ('', ?)",
            (ticket_id, issuer),
        ).fetchone()
        return int(row[0])

    # Challenges ----------------------------------------------------------------------------

    def issue_challenge(self, now_ms: int, ttl_ms: int, bound_to: str = "") -> bytes:
        """A fresh 32-byte nonce, valid for ``ttl_ms``, usable once (optionally bound)."""
        if ttl_ms <= 0:
            raise IntegrityViolation("a challenge needs a positive time to live")
        nonce = os.urandom(NONCE_BYTES)
        self._conn.execute(
            "INSERT INTO challenge (nonce, bound_to, issued_ms, expires_ms) VALUES (?, ?, ?, ?)",
            (nonce, bound_to, now_ms, now_ms + ttl_ms),
        )
        return nonce

    def consume_challenge(self, nonce: bytes, now_ms: int, bound_to: str = "") -> ChallengeOutcome:
        """Consume ``nonce`` once; any second attempt, late or mis-bound use is refused."""
        changed = self._conn.execute(
            "UPDATE challenge SET consumed_ms = ? WHERE nonce = ? AND consumed_ms IS NULL"
            " AND expires_ms > ? AND bound_to = ?",
            (now_ms, nonce, now_ms, bound_to),
        ).rowcount
        if changed == 1:
            return ChallengeOutcome.CONSUMED
        row = self._conn.execute(
            "SELECT consumed_ms, expires_ms, bound_to FROM challenge WHERE nonce = ?", (nonce,)
        ).fetchone()
        if row is None:
            return ChallengeOutcome.UNKNOWN
        if row[0] is not None:
            return ChallengeOutcome.ALREADY_USED
        if row[1] <= now_ms:
            return ChallengeOutcome.EXPIRED
        return ChallengeOutcome.WRONG_BINDING

    def purge_challenges(self, now_ms: int) -> int:
        """Delete every challenge that has expired; return how many."""
        return self._conn.execute("DELETE FROM challenge WHERE expires_ms <= ?", (now_ms,)).rowcount

    # Revocations ---------------------------------------------------------------------------

    def add_revocations(
        self, seq: int, token: str, entries: list[RevocationEntry], now_ms: int
    ) -> RevocationOutcome:
        """Add a list's entries to those held: the union, each until its latest ``until``.

        Nothing a list leaves out is forgotten, whatever its ``seq``; an entry goes only once
        the time floor has passed its ``until`` by :data:`REVOCATION_PURGE_AFTER_MS` (the
        schema refuses any earlier delete). The caller has verified the owner's signature and
        that the list is for this gateway. The list with the highest ``seq`` is kept as a
        record of the newest one received.
        """
        changed = 0
        for entry in entries:
            changed += self._conn.execute(
                "INSERT INTO revocation_entry (kind, value, until_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (kind, value) DO UPDATE SET until_ms = excluded.until_ms"
                " WHERE excluded.until_ms > until_ms",
                (entry.kind, entry.value, entry.until_ms),
            ).rowcount
        current = self.revocation_list()
        if current is None or seq > current.seq:
            self._conn.execute(
                "INSERT INTO revocation_list (singleton, seq, token, stored_ms)"
                " VALUES (1, ?, ?, ?) ON CONFLICT (singleton) DO UPDATE SET seq = excluded.seq,"
                " token = excluded.token, stored_ms = excluded.stored_ms",
                (seq, token, now_ms),
            )
        self._conn.execute(
            "DELETE FROM revocation_entry WHERE until_ms <"
            " (SELECT time_ms FROM time_floor WHERE singleton = 1) - ?",
            (REVOCATION_PURGE_AFTER_MS,),
        )
        return RevocationOutcome.STORED if changed else RevocationOutcome.DUPLICATE

    def revocation_entries(self) -> list[RevocationEntry]:
        rows = self._conn.execute(
            "SELECT kind, value, until_ms FROM revocation_entry ORDER BY kind, value"
        ).fetchall()
        return [RevocationEntry(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def revocation_list(self) -> RevocationRecord | None:
        row = self._conn.execute(
            "SELECT seq, token, stored_ms FROM revocation_list WHERE singleton = 1"
        ).fetchone()
        return None if row is None else RevocationRecord(int(row[0]), str(row[1]), int(row[2]))

    # Time floor ----------------------------------------------------------------------------

    def time_floor(self) -> int:
        """The newest time (Unix ms) ever written to the audit log; 0 for an empty log."""
        row = self._conn.execute("SELECT time_ms FROM time_floor WHERE singleton = 1").fetchone()
        return 0 if row is None else int(row[0])

    def reset_time_floor(self, to_ms: int) -> None:
        """Set the floor to ``to_ms`` (the owner's reset, issue 11 finding 1): the one way it
        ever goes down. The caller records the act in the same transaction."""
        self._conn.execute("UPDATE time_floor SET time_ms = ? WHERE singleton = 1", (to_ms,))

    # Access sessions -----------------------------------------------------------------------

    def open_session(
        self,
        session_id: str,
        door: str,
        state: str,
        now_ms: int,
        ticket_id: str | None = None,
        audit_index: int | None = None,
    ) -> AccessSessionRecord:
        """Start a session on ``door``; refused with ``DoorBusy`` while another is open."""
        busy = self._conn.execute(
            "SELECT session_id FROM access_session WHERE door = ? AND terminal = 0", (door,)
        ).fetchone()
        if busy is not None:
            raise DoorBusy(f"door {door!r} already has an open access session")
        self._conn.execute(
            "INSERT INTO access_session (session_id, door, ticket_id, state, terminal,"
            " opened_ms, updated_ms) VALUES (?, ?, ?, ?, 0, ?, ?)",
            (session_id, door, ticket_id, state, now_ms, now_ms),
        )
        self._record_transition(session_id, state, now_ms, audit_index)
        return AccessSessionRecord(session_id, door, ticket_id, state, False, now_ms, now_ms)

    def set_session_state(
        self,
        session_id: str,
        state: str,
        now_ms: int,
        *,
        terminal: bool = False,
        audit_index: int | None = None,
    ) -> None:
        """Move a session to ``state``; ``terminal`` marks it closed for good."""
        changed = self._conn.execute(
            "UPDATE access_session SET state = ?, terminal = ?, updated_ms = ?"
            " WHERE session_id = ? AND terminal = 0",
            (state, int(terminal), now_ms, session_id),
        ).rowcount
        if changed != 1:
            raise IntegrityViolation(f"access session {session_id!r} is unknown or closed")
        self._record_transition(session_id, state, now_ms, audit_index)

    def _record_transition(
        self, session_id: str, state: str, now_ms: int, audit_index: int | None
    ) -> None:
        self._conn.execute(
            "INSERT INTO access_session_event (session_id, seq, state, time_ms, audit_index)"
            " SELECT ?, COALESCE(MAX(seq) + 1, 0), ?, ?, ? FROM access_session_event"
            " WHERE session_id = ?",
            (session_id, state, now_ms, audit_index, session_id),
        )

    def access_session(self, session_id: str) -> AccessSessionRecord | None:
        """The session's row, or None when it never had one (a denial, or not yet written)."""
        r = self._conn.execute(
            "SELECT session_id, door, ticket_id, state, terminal, opened_ms, updated_ms"
            " FROM access_session WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        if r is None:
            return None
        return AccessSessionRecord(r[0], r[1], r[2], r[3], bool(r[4]), int(r[5]), int(r[6]))

    def unclosed_sessions(self) -> list[AccessSessionRecord]:
        """Every session not in a terminal state: what start-up must reconcile."""
        rows = self._conn.execute(
            "SELECT session_id, door, ticket_id, state, terminal, opened_ms, updated_ms"
            " FROM access_session WHERE terminal = 0 ORDER BY opened_ms"
        ).fetchall()
        return [
            AccessSessionRecord(r[0], r[1], r[2], r[3], bool(r[4]), int(r[5]), int(r[6]))
            for r in rows
        ]

    def session_history(self, session_id: str) -> list[SessionTransition]:
        rows = self._conn.execute(
            "SELECT seq, state, time_ms, audit_index FROM access_session_event"
            " WHERE session_id = ? ORDER BY seq",
            (session_id,),
        ).fetchall()
        return [SessionTransition(int(r[0]), r[1], int(r[2]), r[3]) for r in rows]

    # The outage journal's replay mark -------------------------------------------------------

    def outage_applied(self, journal_id: str) -> int:
        """The last record of outage journal ``journal_id`` already applied (0: none)."""
        row = self._conn.execute(
            "SELECT applied_seq FROM outage_replay WHERE journal_id = ?", (journal_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def mark_outage_applied(self, journal_id: str, seq: int, now_ms: int) -> None:
        """Record that journal ``journal_id`` is applied through ``seq`` (only forward)."""
        self._conn.execute(
            "INSERT INTO outage_replay (journal_id, applied_seq, replayed_ms) VALUES (?, ?, ?)"
            " ON CONFLICT (journal_id) DO UPDATE SET applied_seq = excluded.applied_seq,"
            " replayed_ms = excluded.replayed_ms",
            (journal_id, seq, now_ms),
        )

    # Lock pairings -------------------------------------------------------------------------

    def set_lock_pairing(self, door: str, vendor: str, data: bytes, now_ms: int) -> None:
        self._conn.execute(
            "INSERT INTO lock_pairing (door, vendor, data, updated_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (door) DO UPDATE SET vendor = excluded.vendor, data = excluded.data,"
            " updated_ms = excluded.updated_ms",
            (door, vendor, data, now_ms),
        )

    def lock_pairing(self, door: str) -> LockPairing | None:
        row = self._conn.execute(
            "SELECT door, vendor, data, updated_ms FROM lock_pairing WHERE door = ?", (door,)
        ).fetchone()
        return None if row is None else LockPairing(row[0], row[1], bytes(row[2]), int(row[3]))

    # Clips ---------------------------------------------------------------------------------

    def add_clip(self, path: str, sha256: bytes, entry_index: int, size_bytes: int) -> None:
        self._conn.execute(
            "INSERT INTO clip (path, sha256, entry_index, size_bytes) VALUES (?, ?, ?, ?)",
            (path, sha256, entry_index, size_bytes),
        )

    def forget_clip(self, path: str) -> int | None:
        """Drop the index row of a deleted clip; the ``clip.recorded`` entry it named, if any.

        The audit log keeps the clip's hash for ever; the index only lists files on disk.
        """
        row = self._conn.execute(
            "DELETE FROM clip WHERE path = ? RETURNING entry_index", (path,)
        ).fetchone()
        return None if row is None else int(row[0])

    def clips_for(self, entry_index: int) -> list[ClipRecord]:
        rows = self._conn.execute(
            "SELECT path, sha256, entry_index, size_bytes FROM clip WHERE entry_index = ?"
            " ORDER BY path",
            (entry_index,),
        ).fetchall()
        return [ClipRecord(r[0], bytes(r[1]), int(r[2]), int(r[3])) for r in rows]

    # Sync ----------------------------------------------------------------------------------

    def acked_tree_size(self) -> int:
        row = self._conn.execute(
            "SELECT acked_size FROM sync_cursor WHERE singleton = 1"
        ).fetchone()
        return 0 if row is None else int(row[0])

    def ack_tree_size(self, size: int, now_ms: int) -> None:
        """Record that the cloud holds the first ``size`` entries (never goes back)."""
        self._conn.execute(
            "INSERT INTO sync_cursor (singleton, acked_size, updated_ms) VALUES (1, ?, ?)"
            " ON CONFLICT (singleton) DO UPDATE SET acked_size = excluded.acked_size,"
            " updated_ms = excluded.updated_ms",
            (size, now_ms),
        )

    def upload_boundary(self) -> tuple[int, int] | None:
        """(boundary, slots closed) of the paced upload (docs/privacy.md); None before the
        first slot."""
        row = self._conn.execute(
            "SELECT boundary, slots_closed FROM upload_schedule WHERE singleton = 1"
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def set_upload_boundary(self, boundary: int, slots_closed: int, now_ms: int) -> None:
        """Record that the upload slots have sealed off the first ``boundary`` entries."""
        self._conn.execute(
            "INSERT INTO upload_schedule (singleton, boundary, slots_closed, closed_ms)"
            " VALUES (1, ?, ?, ?) ON CONFLICT (singleton) DO UPDATE SET"
            " boundary = excluded.boundary, slots_closed = excluded.slots_closed,"
            " closed_ms = excluded.closed_ms",
            (boundary, slots_closed, now_ms),
        )
        self._conn.execute(
            "INSERT OR IGNORE INTO scheduled_checkpoint (tree_size) VALUES (?)", (boundary,)
        )

    def add_cosignature(self, tree_size: int, witness: str, signature: bytes, now_ms: int) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO checkpoint_cosignature"
            " (tree_size, witness, signature, received_ms) VALUES (?, ?, ?, ?)",
            (tree_size, witness, signature, now_ms),
        )

    def cosignatures(self, tree_size: int) -> list[tuple[str, bytes]]:
        rows = self._conn.execute(
            "SELECT witness, signature FROM checkpoint_cosignature WHERE tree_size = ?"
            " ORDER BY witness",
            (tree_size,),
        ).fetchall()
        return [(str(r[0]), bytes(r[1])) for r in rows]
