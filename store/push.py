"""The owner's devices' Web Push subscriptions, as synchronous operations on one connection.

Like :mod:`store.devices`: writes run inside a ``Store.transact`` (``tx.push``), so a
subscription and its ``owner.push_*`` audit entry commit together; reads go through
``Store.read`` with ``PushTables(conn)``. The schema (the push-subscriptions migration) keeps
one subscription per device and deletes it when the device is revoked.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PushSubscriptionRecord:
    device_id: str
    #: The push service's URL for this device (RFC 8030 §5): a capability, never logged.
    endpoint: str
    #: The device's P-256 public key (uncompressed, 65 bytes) and auth secret (16 bytes),
    #: RFC 8291 §3.
    p256dh: bytes
    auth: bytes
    #: The kinds of notice the device wants (NoticeKind values).
    kinds: tuple[str, ...]
    created_ms: int


def _record(row: Any) -> PushSubscriptionRecord:
    kinds = json.loads(row[4])
    return PushSubscriptionRecord(
        device_id=str(row[0]),
        endpoint=str(row[1]),
        p256dh=bytes(row[2]),
        auth=bytes(row[3]),
        kinds=tuple(str(k) for k in kinds),
        created_ms=int(row[5]),
    )


_COLUMNS = "s.device_id, s.endpoint, s.p256dh, s.auth, s.kinds, s.created_ms"


class PushTables:
    """Operations on the push-subscription table of one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def put(
        self,
        device_id: str,
        endpoint: str,
        p256dh: bytes,
        auth: bytes,
        kinds: tuple[str, ...],
        now_ms: int,
    ) -> None:
        """Subscribe ``device_id`` (replacing its subscription, and any other device's row
        with the same endpoint: one browser, one subscription)."""
        self._conn.execute(
            "DELETE FROM push_subscription WHERE endpoint = ? AND device_id != ?",
            (endpoint, device_id),
        )
        self._conn.execute(
            "INSERT INTO push_subscription (device_id, endpoint, p256dh, auth, kinds, created_ms)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
            " endpoint = excluded.endpoint, p256dh = excluded.p256dh, auth = excluded.auth,"
            " kinds = excluded.kinds, created_ms = excluded.created_ms",
            (device_id, endpoint, p256dh, auth, json.dumps(list(kinds)), now_ms),
        )

    def set_kinds(self, device_id: str, kinds: tuple[str, ...]) -> bool:
        cur = self._conn.execute(
            "UPDATE push_subscription SET kinds = ? WHERE device_id = ?",
            (json.dumps(list(kinds)), device_id),
        )
        return cur.rowcount == 1

    def remove(self, device_id: str) -> bool:
        cur = self._conn.execute("DELETE FROM push_subscription WHERE device_id = ?", (device_id,))
        return cur.rowcount == 1

    def remove_endpoint(self, endpoint: str) -> bool:
        """The push service said this subscription is gone (404 or 410)."""
        cur = self._conn.execute("DELETE FROM push_subscription WHERE endpoint = ?", (endpoint,))
        return cur.rowcount == 1

    def of_device(self, device_id: str) -> PushSubscriptionRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM push_subscription s WHERE s.device_id = ?",  # noqa: S608
            (device_id,),
        ).fetchone()
        return None if row is None else _record(row)

    def active(self) -> list[PushSubscriptionRecord]:
        """Every subscription of a device that is not revoked (the trigger deletes a revoked
        device's row; the join is the second lock on that door)."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM push_subscription s JOIN owner_device d"  # noqa: S608
            " ON d.device_id = s.device_id WHERE d.revoked_ms IS NULL ORDER BY s.device_id"
        ).fetchall()
        return [_record(r) for r in rows]
