"""The lock driver interface: what the gateway needs from any smart lock, whatever the vendor.

Vendor drivers (``ble.nuki``, ``ble.switchbot``) implement :class:`LockDriver` over the BLE link
(:mod:`ble.link`) and are built by the vendor registry (:mod:`ble.vendors`); the gateway
depends on this module only, as bleak's facade depends only on its abstract backend.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


class LockState(enum.Enum):
    LOCKED = "locked"
    UNLOCKING = "unlocking"
    UNLOCKED = "unlocked"
    LOCKING = "locking"
    JAMMED = "jammed"
    UNKNOWN = "unknown"


class DoorState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LockStatus:
    """One reading of a lock, as the lock reported it at ``read_at``."""

    lock: LockState
    door: DoorState
    battery_percent: int | None
    battery_critical: bool
    read_at: datetime


StatusCallback = Callable[[LockStatus], None]


@runtime_checkable
class LockDriver(Protocol):
    """A smart lock the gateway can command.

    Every method ends within the driver's configured timeout or raises a
    :class:`ble.errors.LockError` subclass. ``unlock`` is never retried blindly by a driver:
    if its outcome is unknown, the driver reads the state and raises
    :class:`ble.errors.LockOutcomeUnknown` carrying what it read.
    """

    async def status(self) -> LockStatus: ...

    async def unlock(self) -> LockStatus: ...

    async def lock(self) -> LockStatus: ...

    async def unlatch(self) -> LockStatus: ...

    def subscribe(self, callback: StatusCallback) -> Callable[[], None]:
        """Call ``callback`` on every state change; returns a function that unsubscribes."""
        ...

    async def close(self) -> None: ...
