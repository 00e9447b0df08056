"""The owner's invitations of visitors (docs/visitors.md), as synchronous operations on one
connection.

Like :mod:`store.devices`: the ``Store`` runs these inside its writer transactions (through
``StoreTransaction.invitations``), so "the link is spent", "the visitor's key is bound" and
the ``visitor.claimed`` audit entry commit together; reads go through ``Store.read`` with
``InvitationTables(conn)``. The terms are the caller's JSON text: this layer keeps them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class InvitationRecord:
    invitation_id: str
    terms: str
    invited_by: str
    created_ms: int
    link_expires_ms: int
    ends_ms: int
    holder_key: bytes | None
    claimed_ms: int | None
    revoked_ms: int | None


_COLUMNS = (
    "invitation_id, terms, invited_by, created_ms, link_expires_ms, ends_ms, holder_key,"
    " claimed_ms, revoked_ms"
)


def _record(row: Any) -> InvitationRecord:
    return InvitationRecord(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        int(row[3]),
        int(row[4]),
        int(row[5]),
        None if row[6] is None else bytes(row[6]),
        None if row[7] is None else int(row[7]),
        None if row[8] is None else int(row[8]),
    )


class InvitationTables:
    """Operations on the invitation table of one connection, inside a caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add(
        self,
        invitation_id: str,
        token_hash: bytes,
        terms: str,
        invited_by: str,
        now_ms: int,
        link_expires_ms: int,
        ends_ms: int,
    ) -> None:
        self._conn.execute(
            "INSERT INTO visitor_invitation (invitation_id, token_hash, terms, invited_by,"
            " created_ms, link_expires_ms, ends_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (invitation_id, token_hash, terms, invited_by, now_ms, link_expires_ms, ends_ms),
        )

    def by_token(self, token_hash: bytes) -> InvitationRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM visitor_invitation WHERE token_hash = ?",  # noqa: S608
            (token_hash,),
        ).fetchone()
        return None if row is None else _record(row)

    def by_holder(self, holder_key: bytes) -> InvitationRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM visitor_invitation WHERE holder_key = ?",  # noqa: S608
            (holder_key,),
        ).fetchone()
        return None if row is None else _record(row)

    def get(self, invitation_id: str) -> InvitationRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM visitor_invitation WHERE invitation_id = ?",  # noqa: S608
            (invitation_id,),
        ).fetchone()
        return None if row is None else _record(row)

    def all(self) -> list[InvitationRecord]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM visitor_invitation ORDER BY created_ms DESC"  # noqa: S608
        ).fetchall()
        return [_record(row) for row in rows]

    def claim(self, token_hash: bytes, holder_key: bytes, now_ms: int) -> bool:
        """Bind the visitor's key and spend the link, atomically: False if it was claimed,
        revoked or has expired meanwhile."""
        changed = self._conn.execute(
            "UPDATE visitor_invitation SET holder_key = ?, claimed_ms = ? WHERE token_hash = ?"
            " AND holder_key IS NULL AND revoked_ms IS NULL AND link_expires_ms > ?",
            (holder_key, now_ms, token_hash, now_ms),
        ).rowcount
        return changed == 1

    def revoke(self, invitation_id: str, now_ms: int) -> bool:
        changed = self._conn.execute(
            "UPDATE visitor_invitation SET revoked_ms = ? WHERE invitation_id = ?"
            " AND revoked_ms IS NULL",
            (now_ms, invitation_id),
        ).rowcount
        return changed == 1
