"""What an access event means to the owner: a :class:`Notice` in the owner's words. Pure.

Every :class:`~gateway.access.observer.AccessEvent` that concerns a visit becomes a notice;
``alert`` says whether it is worth interrupting the owner (a system notification, a push):
a courier arriving, a visitor waiting for approval, an emergency entry, a relock that failed,
the camera stopping during a visit, a door left open longer than its ticket allows, the
gateway's clock found behind its time floor. The others (a visitor let in, a door locked again, a
refusal) only refresh what the app shows. Notifiers (the app's live feed now; Web Push and
MQTT later) receive notices, never raw access events, so they all say the same thing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from gateway.access.observer import (
    AccessEvent,
    DoorRelocked,
    GrantCommitted,
    OwnerNotification,
    RequestRefused,
)
from gateway.access.session import NotificationKind


class NoticeKind(enum.StrEnum):
    COURIER_ARRIVED = "courier_arrived"
    VISITOR_LET_IN = "visitor_let_in"
    APPROVAL_NEEDED = "approval_needed"
    EMERGENCY_ENTRY = "emergency_entry"
    RELOCK_FAILED = "relock_failed"
    CAMERA_STALLED = "camera_stalled"
    DOOR_RELOCKED = "door_relocked"
    VISITOR_REFUSED = "visitor_refused"
    CLOCK_FLOOR_AHEAD = "clock_floor_ahead"
    DOOR_LEFT_OPEN = "door_left_open"


#: The screen of the app a notice opens (the app's routes are #now, #approve/<s>, ...).
SCREEN = {
    NoticeKind.APPROVAL_NEEDED: "approve",
    NoticeKind.COURIER_ARRIVED: "live",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell the owner."""

    kind: NoticeKind
    door: str
    session: str
    purpose: str
    text: str
    alert: bool
    at_ms: int
    #: Who is at the door (the ticket's subject); "" when the notice is about no one.
    subject: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "door": self.door,
            "session": self.session,
            "purpose": self.purpose,
            "subject": self.subject,
            "text": self.text,
            "alert": self.alert,
            "at_ms": self.at_ms,
            "screen": SCREEN.get(self.kind, "now"),
        }


def _door(door: str) -> str:
    return f"the {door} door" if door else "a door"


def notice_for(event: AccessEvent, now_ms: int) -> Notice | None:
    """The notice for ``event``, or None when it is nothing to the owner."""
    if isinstance(event, GrantCommitted):
        if event.purpose == "delivery":
            kind, text, alert = NoticeKind.COURIER_ARRIVED, f"Courier at {_door(event.door)}", True
        else:
            kind = NoticeKind.VISITOR_LET_IN
            text, alert = f"{event.purpose.capitalize()} let in at {_door(event.door)}", False
        return Notice(
            kind, event.door, event.session, event.purpose, text, alert, now_ms, event.subject
        )
    if isinstance(event, OwnerNotification):
        d = _door(event.door)
        match event.kind:
            case NotificationKind.APPROVAL_NEEDED:
                who = event.purpose.capitalize() or "A visitor"
                kind, text = NoticeKind.APPROVAL_NEEDED, f"{who} waiting for your approval at {d}"
            case NotificationKind.EMERGENCY_ENTRY:
                kind, text = NoticeKind.EMERGENCY_ENTRY, f"Emergency entry at {d}"
            case NotificationKind.RELOCK_FAILED:
                kind, text = NoticeKind.RELOCK_FAILED, f"{d.capitalize()} did not lock again"
            case NotificationKind.CAMERA_STALLED:
                kind, text = NoticeKind.CAMERA_STALLED, "Camera stopped during a visit"
            case NotificationKind.DOOR_LEFT_OPEN:
                kind = NoticeKind.DOOR_LEFT_OPEN
                text = f"{d.capitalize()} was left open longer than the ticket allows"
            case NotificationKind.CLOCK_FLOOR_AHEAD:
                # About the gateway itself: no door, no session, no one at the door.
                kind, text = NoticeKind.CLOCK_FLOOR_AHEAD, event.text
        return Notice(
            kind, event.door, event.session, event.purpose, text, True, now_ms, event.subject
        )
    if isinstance(event, DoorRelocked):
        text = f"{_door(event.door).capitalize()} is locked again"
        return Notice(NoticeKind.DOOR_RELOCKED, event.door, event.session, "", text, False, now_ms)
    if isinstance(event, RequestRefused) and event.session is not None:
        text = f"A visitor was turned away at {_door(event.door)} ({event.code.value})"
        return Notice(
            NoticeKind.VISITOR_REFUSED, event.door, event.session, "", text, False, now_ms
        )
    return None
