"""The video package's exceptions: one base, typed subclasses with stable codes."""

from __future__ import annotations

from typing import ClassVar


class CameraError(Exception):
    """Base of every deliberate error raised by the camera code."""

    code: ClassVar[str] = "camera_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
