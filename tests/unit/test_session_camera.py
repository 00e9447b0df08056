"""The access session's camera transitions (pure): stall entries and the scene's facts."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from ble.driver import DoorState, LockState, LockStatus
from gateway.access.scene import AT_DOOR_WITHIN_S, MotionReading, grant_scene, relock_scene
from gateway.access.session import (
    AccessSession,
    AppendAudit,
    ApprovalGiven,
    ApprovalRequired,
    Granted,
    NotificationKind,
    NotifyOwner,
    RelockCause,
    Relocked,
    RelockRequested,
    SendLock,
    SessionFacts,
    SessionState,
    Unlocked,
)

FACTS = SessionFacts(
    session="s1", door="front", jti="t1", subject="courier", purpose="delivery", open_s=30
)


def status(lock: LockState) -> LockStatus:
    return LockStatus(lock, DoorState.CLOSED, 90, False, datetime(2026, 1, 1, tzinfo=UTC))


def opened() -> AccessSession:
    s = AccessSession(FACTS)
    s.handle(Granted())
    s.handle(Unlocked(status(LockState.UNLOCKED)))
    return s


def kinds(effects: list[object]) -> list[str]:
    return [e.kind if isinstance(e, AppendAudit) else type(e).__name__ for e in effects]


def test_a_stall_relocks_with_camera_stalled_and_an_alarm_before_the_lock_command() -> None:
    s = opened()
    effects = s.handle(RelockRequested(RelockCause.CAMERA_STALLED))
    assert kinds(effects) == [
        "session.relocking",
        "camera.stalled",
        "alarm.raised",
        "NotifyOwner",
        "SendLock",
    ]
    relocking, stalled, alarm = (e for e in effects if isinstance(e, AppendAudit))
    assert relocking.record()["cause"] == "camera_stalled"
    assert stalled.record()["session"] == "s1"
    assert alarm.record()["reason"] == "camera_stalled"
    assert effects[3] == NotifyOwner(NotificationKind.CAMERA_STALLED)
    assert isinstance(effects[-1], SendLock)
    assert s.state is SessionState.RELOCKING


# UNLOCK_UNCERTAIN and RECONCILE never come as RelockRequested from open.
FROM_OPEN = (
    RelockCause.DONE,
    RelockCause.DOOR_CLOSED,
    RelockCause.OPEN_TIMEOUT,
    RelockCause.OWNER,
    RelockCause.SHUTDOWN,
)


@pytest.mark.parametrize("cause", FROM_OPEN)
def test_other_relocks_raise_no_camera_alarm(cause: RelockCause) -> None:
    s = opened()
    assert kinds(s.handle(RelockRequested(cause))) == ["session.relocking", "SendLock"]


def test_scene_facts_ride_with_grant_approval_and_close_without_overwriting() -> None:
    s = AccessSession(FACTS)
    scene = MappingProxyType({"motion": "seen", "session": "evil", "someone_at_door": True})
    granted = s.handle(Granted(scene=scene))[0]
    assert isinstance(granted, AppendAudit)
    record = granted.record()
    assert record["scene_motion"] == "seen"
    assert record["scene_someone_at_door"] is True
    assert record["session"] == "s1"  # a scene key cannot replace a session field
    s.handle(Unlocked(status(LockState.UNLOCKED)))
    s.handle(RelockRequested(RelockCause.DONE))
    closed = s.handle(Relocked(status(LockState.LOCKED), scene=MappingProxyType({"quiet": True})))
    assert isinstance(closed[0], AppendAudit)
    assert closed[0].record()["scene_quiet"] is True

    approved = AccessSession(FACTS)
    approved.handle(ApprovalRequired(10))
    effects = approved.handle(ApprovalGiven(scene=MappingProxyType({"motion": "none"})))
    assert isinstance(effects[0], AppendAudit)
    assert effects[0].record()["scene_motion"] == "none"


def test_a_relock_that_does_not_read_locked_ignores_the_scene_and_alarms() -> None:
    s = opened()
    s.handle(RelockRequested(RelockCause.DONE))
    effects = s.handle(Relocked(status(LockState.UNLOCKED), scene=MappingProxyType({"q": 1})))
    assert kinds(effects)[:2] == ["session.alarm", "alarm.raised"]


def test_grant_scene_someone_at_the_door() -> None:
    assert grant_scene(None) == {"motion": "unavailable"}
    assert grant_scene(MotionReading(False, False, None)) == {"motion": "unavailable"}
    moving = grant_scene(MotionReading(True, True, 0.0))
    assert moving["someone_at_door"] is True
    recent = grant_scene(MotionReading(True, False, AT_DOOR_WITHIN_S - 1))
    assert recent["someone_at_door"] is True
    assert recent["ms_since_motion"] == round((AT_DOOR_WITHIN_S - 1) * 1000)
    stale = grant_scene(MotionReading(True, False, AT_DOOR_WITHIN_S + 1))
    assert stale == {
        "motion": "none",
        "someone_at_door": False,
        "ms_since_motion": round((AT_DOOR_WITHIN_S + 1) * 1000),
    }
    never = grant_scene(MotionReading(True, False, None))
    assert never["someone_at_door"] is False
    assert never["ms_since_motion"] is None


def test_relock_scene_went_quiet() -> None:
    assert relock_scene(None) == {"motion": "unavailable"}
    assert relock_scene(MotionReading(True, True, 0.0))["quiet"] is False
    quiet = relock_scene(MotionReading(True, False, 2.5))
    assert quiet == {"motion": "still", "quiet": True, "ms_since_motion": 2500}
