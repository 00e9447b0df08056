"""The cloud package's exceptions: one base, typed subclasses with stable codes."""

from __future__ import annotations

from typing import ClassVar


class CloudError(Exception):
    """Base of every deliberate error raised by the cloud relay or its clients."""

    code: ClassVar[str] = "cloud_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
