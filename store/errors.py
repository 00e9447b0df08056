"""The store package's exceptions: one base, typed subclasses with stable codes."""

from __future__ import annotations

from typing import ClassVar


class StoreError(Exception):
    """Base of every deliberate error raised by the store."""

    code: ClassVar[str] = "storage_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
