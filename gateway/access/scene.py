"""What the camera's motion facts mean at the door: pure, for the grant and relock entries.

At a grant the question is "is someone at the door?": motion now, or within
:data:`AT_DOOR_WITHIN_S`. At a relock it is "did the scene go quiet after the door closed?":
no motion now. The answers are stored with the ``session.granted`` and ``session.closed``
entries (as ``scene_*`` fields), so an owner reading the log sees whether the picture agreed
with the lock. No camera, or motion detection off, says so rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.access.session import AuditValue

AT_DOOR_WITHIN_S = 10.0


@dataclass(frozen=True, slots=True)
class MotionReading:
    """The camera's motion facts at one moment (video.camera.MotionFacts, camera-free)."""

    enabled: bool
    moving: bool
    seconds_since_motion: float | None


def _since(reading: MotionReading) -> AuditValue:
    s = reading.seconds_since_motion
    return None if s is None else round(s * 1000)  # audit values are integers, not floats


def grant_scene(reading: MotionReading | None) -> dict[str, AuditValue]:
    if reading is None or not reading.enabled:
        return {"motion": "unavailable"}
    near = reading.seconds_since_motion
    at_door = reading.moving or (near is not None and near <= AT_DOOR_WITHIN_S)
    return {
        "motion": "seen" if at_door else "none",
        "someone_at_door": at_door,
        "ms_since_motion": _since(reading),
    }


def relock_scene(reading: MotionReading | None) -> dict[str, AuditValue]:
    if reading is None or not reading.enabled:
        return {"motion": "unavailable"}
    return {
        "motion": "moving" if reading.moving else "still",
        "quiet": not reading.moving,
        "ms_since_motion": _since(reading),
    }
