"""The time-floor rule: when may the gateway believe its own clock? (docs/tickets.md §6, check 5)

Offline, the gateway's clock is the only clock, and a dead RTC battery or a tampered NTP
answer can move it backwards to make an expired ticket valid again. The gateway persists a
floor, the newest time it has written to its audit log, and treats any ``now`` more than the
allowed skew below that floor as untrusted. Time-bound tickets then fail closed; emergency
tickets still open, loudly. This module is the rule only; the store persists the floor.
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
