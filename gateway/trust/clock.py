"""The time-floor rule: when may the gateway believe its own clock? (docs/tickets.md §6, check 5)

Offline, the gateway's clock is the only clock, and a dead RTC battery or a tampered NTP
answer can move it backwards to make an expired ticket valid again. The gateway persists a
floor, the newest time it has written to its audit log, and treats any ``now`` more than the
allowed skew below that floor as untrusted. Time-bound tickets then fail closed; emergency
tickets still open, loudly. This module is the rule only; the store persists the floor.

Signed time from outside (the relay's, docs/cloud.md) may raise the floor, but never past the
local clock plus the skew (:func:`raised_floor_ms`), whatever the floor already is: an outside
source can then never make the local clock untrusted by itself, and repeating itself cannot
ratchet the floor forward (issue 11, finding 1). A floor found further ahead than that
(:func:`floor_ahead`) was put there by the clock going back or by an older gateway's rule; it
is reported, and the owner may reset it to the local clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_SKEW = timedelta(seconds=120)


def clock_trusted(now: datetime, floor: datetime | None, skew: timedelta = DEFAULT_SKEW) -> bool:
    """Whether ``now`` is believable given the persisted ``floor`` (None: nothing recorded)."""
    return floor is None or now >= floor - skew


def advance_floor(floor: datetime | None, now: datetime) -> datetime:
    """The new floor after an event stamped ``now``: it only ever moves forward."""
    return now if floor is None or now > floor else floor


def raised_floor_ms(floor_ms: int, local_now_ms: int, claimed_ms: int, skew_ms: int) -> int:
    """The floor (Unix ms) after an outside source signed that it is ``claimed_ms``.

    The floor only rises, and only to ``local_now_ms + skew_ms`` at most: the ceiling is the
    local clock's, never the floor's, so however often a source repeats itself (or however far
    ahead the floor already is) it cannot move the floor past the skew. With the floor at most
    the skew ahead, :func:`clock_trusted` still holds: signed time guards against the clock
    going back *later*, it never locks anyone out now.
    """
    ceiling = local_now_ms + skew_ms
    return max(floor_ms, min(claimed_ms, ceiling))


def floor_ahead(
    floor: datetime | None, now: datetime, skew: timedelta = DEFAULT_SKEW
) -> timedelta | None:
    """How far ``floor`` is ahead of ``now`` when that is more than ``skew`` (implausible: the
    clock went back, or an outside source pushed the floor under an older rule); else None."""
    if floor is None or floor - now <= skew:
        return None
    return floor - now


def plausible_times(now: datetime, floor: datetime | None, skew: timedelta) -> tuple[datetime, ...]:
    """The times a request may be judged at: ``now`` while the clock is trusted; when it is
    not, both the clock and the floor, since either may be the wrong one (an emergency ticket
    is judged valid if it is valid at either: it is never refused because of the clock)."""
    if clock_trusted(now, floor, skew) or floor is None:
        return (now,)
    return (now, floor)
