"""The owner's devices and enrollment links, as synchronous operations on one connection.

Like :mod:`store.state`: the ``Store`` runs these inside its writer transactions (through
``StoreTransaction.devices``), so "the link is spent", "the device exists" and the
``owner.device_enrolled`` audit entry commit together; reads go through ``Store.read`` with
``DeviceTables(conn)``. The rules that matter are also in the schema (the owner-devices
migration): a link is used once, a revoked device stays revoked, a device is never deleted.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from typing import Any

from store.errors import IntegrityViolation


class EnrollmentOutcome(enum.Enum):
    USABLE = "usable"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True, slots=True)
class EnrollmentRecord:
    role: str
    name: str
    created_ms: int
    expires_ms: int
    used_ms: int | None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    device_id: str
    credential_id: bytes
    public_key: bytes
    sign_count: int
    role: str
    name: str
    created_ms: int
    last_used_ms: int | None
    revoked_ms: int | None
    #: A member device the owner allowed to open doors (approve, deny, unlock).
    may_open: bool = False

    @property
    def revoked(self) -> bool:
        return self.revoked_ms is not None


_DEVICE_COLUMNS = (
    "device_id, credential_id, public_key, sign_count, role, name, created_ms, last_used_ms,"
    " revoked_ms, may_open"
)


def _device(row: Any) -> DeviceRecord:
    return DeviceRecord(
        device_id=str(row[0]),
        credential_id=bytes(row[1]),
        public_key=bytes(row[2]),
        sign_count=int(row[3]),
        role=str(row[4]),
        name=str(row[5]),
        created_ms=int(row[6]),
        last_used_ms=None if row[7] is None else int(row[7]),
        revoked_ms=None if row[8] is None else int(row[8]),
        may_open=bool(row[9]),
    )


class DeviceTables:
    """Operations on the owner-device tables of one connection, inside a caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # Enrollment links ----------------------------------------------------------------------

    def add_enrollment(
        self, token_hash: bytes, role: str, name: str, now_ms: int, ttl_ms: int
    ) -> None:
        if ttl_ms <= 0:
            raise IntegrityViolation("an enrollment link needs a positive time to live")
        self._conn.execute(
            "INSERT INTO owner_enrollment (token_hash, role, name, created_ms, expires_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_hash, role, name, now_ms, now_ms + ttl_ms),
        )

    def enrollment(
        self, token_hash: bytes, now_ms: int
    ) -> tuple[EnrollmentOutcome, EnrollmentRecord | None]:
        row = self._conn.execute(
            "SELECT role, name, created_ms, expires_ms, used_ms FROM owner_enrollment"
            " WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        if row is None:
            return EnrollmentOutcome.UNKNOWN, None
        record = EnrollmentRecord(
            str(row[0]),
            str(row[1]),
            int(row[2]),
            int(row[3]),
            None if row[4] is None else int(row[4]),
        )
        if record.used_ms is not None:
            return EnrollmentOutcome.USED, record
        if record.expires_ms <= now_ms:
            return EnrollmentOutcome.EXPIRED, record
        return EnrollmentOutcome.USABLE, record

    def spend_enrollment(self, token_hash: bytes, device_id: str, now_ms: int) -> bool:
        """Mark the link used by ``device_id``; False if it was already used or has expired."""
        changed = self._conn.execute(
            "UPDATE owner_enrollment SET used_ms = ?, device_id = ? WHERE token_hash = ?"
            " AND used_ms IS NULL AND expires_ms > ?",
            (now_ms, device_id, token_hash, now_ms),
        ).rowcount
        return changed == 1

    # Devices -------------------------------------------------------------------------------

    def add_device(
        self,
        device_id: str,
        credential_id: bytes,
        public_key: bytes,
        sign_count: int,
        role: str,
        name: str,
        now_ms: int,
    ) -> None:
        self._conn.execute(
            "INSERT INTO owner_device (device_id, credential_id, public_key, sign_count, role,"
            " name, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (device_id, credential_id, public_key, sign_count, role, name, now_ms),
        )

    def devices(self) -> list[DeviceRecord]:
        rows = self._conn.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM owner_device ORDER BY created_ms, device_id"  # noqa: S608
        ).fetchall()
        return [_device(r) for r in rows]

    def device(self, device_id: str) -> DeviceRecord | None:
        row = self._conn.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM owner_device WHERE device_id = ?",  # noqa: S608
            (device_id,),
        ).fetchone()
        return None if row is None else _device(row)

    def device_by_credential(self, credential_id: bytes) -> DeviceRecord | None:
        row = self._conn.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM owner_device WHERE credential_id = ?",  # noqa: S608
            (credential_id,),
        ).fetchone()
        return None if row is None else _device(row)

    def record_use(self, device_id: str, sign_count: int, now_ms: int) -> bool:
        """Store the authenticator's new signature counter; False if the device is revoked.

        The counter only moves forward (a cloned authenticator replaying an old count is the
        caller's refusal; this write never lowers it).
        """
        changed = self._conn.execute(
            "UPDATE owner_device SET sign_count = MAX(sign_count, ?), last_used_ms = ?"
            " WHERE device_id = ? AND revoked_ms IS NULL",
            (sign_count, now_ms, device_id),
        ).rowcount
        return changed == 1

    def rename(self, device_id: str, name: str) -> bool:
        changed = self._conn.execute(
            "UPDATE owner_device SET name = ? WHERE device_id = ? AND revoked_ms IS NULL",
            (name, device_id),
        ).rowcount
        return changed == 1

    def set_may_open(self, device_id: str, may_open: bool) -> bool:
        """Allow a member device to open doors, or stop it; False if there is no such active
        member device."""
        changed = self._conn.execute(
            "UPDATE owner_device SET may_open = ? WHERE device_id = ? AND revoked_ms IS NULL"
            " AND role = 'member'",
            (int(may_open), device_id),
        ).rowcount
        return changed == 1

    def revoke(self, device_id: str, now_ms: int) -> bool:
        """Revoke the device; False if there is no such device or it was revoked before."""
        changed = self._conn.execute(
            "UPDATE owner_device SET revoked_ms = ? WHERE device_id = ? AND revoked_ms IS NULL",
            (now_ms, device_id),
        ).rowcount
        return changed == 1
