"""The vocabulary every vendor's sans-IO exchange shares with the BLE link, pure.

An exchange (a pairing, a state read, a lock action) is a state machine that never touches a
socket: ``start()`` gives its first events, ``receive(frame)`` takes each complete frame from
the lock and gives the events it causes, ``done`` says when it needs nothing more. Among its
events, :class:`SendFrame` asks the link to write bytes to the lock; the link hands every
other event back to the vendor's driver, which alone knows what it means.

:mod:`ble.link` drives any such exchange over bleak. No asyncio and no I/O here, so a vendor's
protocol modules can import this and stay pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Write ``data`` to the lock. ``is_action`` marks the frame after which an action's
    outcome is unknown if the link drops: the point of no return. A driver never sends such a
    frame twice; it reads the lock's state instead."""

    data: bytes
    is_action: bool = False


class Exchange(Protocol):
    """A sans-IO exchange with a lock, as the link drives it."""

    @property
    def done(self) -> bool: ...

    def start(self) -> Sequence[object]: ...

    def receive(self, frame: bytes) -> Sequence[object]: ...
