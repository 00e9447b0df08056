"""The ble package's exceptions: one base, typed subclasses with stable codes."""

from __future__ import annotations

from typing import ClassVar


class LockError(Exception):
    """Base of every deliberate error raised by a lock driver or transport."""

    code: ClassVar[str] = "lock_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
