"""The video package's exceptions: one base, typed subclasses with stable codes.

The gateway turns a code into an audit entry or a problem+json ``code``; the codes never
change once released.
"""

from __future__ import annotations

from typing import ClassVar


class CameraError(Exception):
    """Base of every deliberate error raised by the camera code."""

    code: ClassVar[str] = "camera_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CameraUnavailable(CameraError):
    """No fresh frames: the camera is down, stalled or not connected yet."""

    code = "camera_unavailable"


class CameraConnectFailed(CameraError):
    """The camera could not be opened (wrong URL, refused, timed out, no video stream)."""

    code = "camera_connect_failed"


class CameraAuthFailed(CameraConnectFailed):
    """The camera refused the credentials: retrying soon would only get the gateway locked
    out, so the reader waits the longest step of its schedule."""

    code = "camera_auth_failed"


class CameraTransportRefused(CameraConnectFailed):
    """The camera refused the RTSP transport asked for (461): it offers only UDP, or only
    TCP."""

    code = "camera_transport_refused"


class CameraConfigError(CameraError):
    """A camera setting is invalid; the message names it."""

    code = "bad_camera_config"


class ClipFailed(CameraError):
    """A clip could not be written, or holds no video at all."""

    code = "clip_failed"


class SnapshotFailed(CameraError):
    """No picture could be decoded for a snapshot."""

    code = "snapshot_failed"


class LiveViewBusy(CameraError):
    """Too many live viewers already: each costs a decoder."""

    code = "live_view_busy"
