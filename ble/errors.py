"""The ble package's exceptions: one base, typed subclasses with stable codes.

Each message is one a homeowner can act on: it says what happened and what to try.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ble.driver import LockStatus


class LockError(Exception):
    """Base of every deliberate error raised by a lock driver or transport."""

    code: ClassVar[str] = "lock_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LockNotFound(LockError):
    code = "lock_not_found"


class LockConnectionFailed(LockError):
    code = "lock_connection_failed"


class LockTimeout(LockError):
    code = "lock_timeout"


class LockJammed(LockError):
    code = "lock_jammed"


class LockNotAuthorized(LockError):
    code = "lock_not_authorized"


class LockProtocolError(LockError):
    code = "lock_protocol_error"


class LockBusy(LockError):
    code = "lock_busy"


class LockOutcomeUnknown(LockError):
    """A command's outcome is unknown (the link dropped); ``status`` is what a re-read found,
    or ``None`` when the lock could not be read either."""

    code = "lock_outcome_unknown"

    def __init__(self, message: str, status: LockStatus | None) -> None:
        super().__init__(message)
        self.status = status


class NoBluetoothAdapter(LockConnectionFailed):
    """This computer has no usable Bluetooth radio (no adapter, or no BlueZ)."""

    code = "no_bluetooth_adapter"


class LinkLost(LockConnectionFailed):
    """The BLE link to the lock ended while a write or a reply was under way. A driver
    usually re-raises it with what the loss means for its command."""


class StepTimedOut(LockTimeout):
    """One bounded step on the BLE link (a write, or the wait for the next reply) took longer
    than its limit. A driver usually re-raises it with what the timeout means for its
    command."""


class LockNotPaired(LockNotAuthorized):
    """No pairing is stored for the lock: the gateway has never been introduced to it."""

    code = "lock_not_paired"
