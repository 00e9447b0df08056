"""Weekly time windows (a cleaner's "mon,thu 09:00-12:00"), evaluated on the gateway's wall clock.

A window names days of the week and a start and end time of day. It is evaluated in the
gateway's IANA time zone (``zoneinfo``), on the local wall clock, so "09:00" means nine in the
morning in winter and in summer. Consequences at DST changes, by design:

* spring forward: local times that do not exist (01:00-02:00 in London) are simply never
  reached, so a window over them is shorter that day;
* fall back: local times that happen twice are inside the window both times.

An end earlier than the start wraps past midnight into the next day ("sun 22:00-06:00" runs
from Sunday 22:00 to Monday 06:00), and the end may be ``24:00``. Start equal to end is refused
as ambiguous. Windows are compared on a minute-of-week line for certificate containment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from gateway.trust.claims import malformed

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_MINUTES = 1440
_WEEK_MINUTES = 7 * _DAY_MINUTES
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_SPEC = re.compile(r"\s*([a-z,-]+)\s+(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*")


def _minutes(text: str) -> int:
    if not isinstance(text, str) or _CLOCK.fullmatch(text) is None:
        malformed(f"not a time of day HH:MM: {str(text)[:20]!r}")
    return int(text[:2]) * 60 + int(text[3:])


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """Days (0 = Monday) and a [start, end) time of day in minutes; end < start wraps."""

    days: frozenset[int]
    start: int
    end: int

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            malformed("a window needs at least one day")
        if not (0 <= self.start < _DAY_MINUTES and 0 < self.end <= _DAY_MINUTES):
            malformed("window times out of range")
        if self.start == self.end:
            malformed("a window's start and end must differ")

    @property
    def wraps(self) -> bool:
        return self.end < self.start

    def contains(self, weekday: int, minute: int) -> bool:
        """Whether local (weekday, minute of day) lies in this window."""
        if not self.wraps:
            return weekday in self.days and self.start <= minute < self.end
        if weekday in self.days and minute >= self.start:
            return True
        return (weekday - 1) % 7 in self.days and minute < self.end

    def intervals(self) -> list[tuple[int, int]]:
        """This window as [a, b) intervals on the minute-of-week line, split at week end."""
        out: list[tuple[int, int]] = []
        length = (self.end - self.start) % _DAY_MINUTES or _DAY_MINUTES
        for day in sorted(self.days):
            a = day * _DAY_MINUTES + self.start
            b = a + length
            if b <= _WEEK_MINUTES:
                out.append((a, b))
            else:
                out += [(a, _WEEK_MINUTES), (0, b - _WEEK_MINUTES)]
        return out

    def to_claim(self) -> dict[str, object]:
        return {
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "start": _clock(self.start),
            "end": _clock(self.end),
        }

    @classmethod
    def from_claim(cls, days: Sequence[str], start: str, end: str) -> WeeklyWindow:
        if len(set(days)) != len(days) or any(d not in DAY_NAMES for d in days):
            malformed("window days must be distinct names among mon..sun")
        return cls(frozenset(DAY_NAMES.index(d) for d in days), _minutes(start), _minutes(end))

    @classmethod
    def parse(cls, spec: str) -> WeeklyWindow:
        """Parse the CLI form ``"mon,tue 09:00-11:00"`` (day ranges like ``mon-fri`` too)."""
        match = _SPEC.fullmatch(spec.lower())
        if match is None:
            malformed(f"schedule must look like 'mon,tue 09:00-11:00', got {spec[:40]!r}")
        days: set[int] = set()
        for part in match.group(1).split(","):
            first, _, last = part.partition("-")
            if first not in DAY_NAMES or (last and last not in DAY_NAMES):
                malformed(f"unknown day in {part!r}")
            a = DAY_NAMES.index(first)
            b = DAY_NAMES.index(last) if last else a
            days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
        return cls(frozenset(days), _minutes(match.group(2)), _minutes(match.group(3)))


def daily(start: int, end: int) -> WeeklyWindow:
    """The same hours every day (an issuer certificate's ``hours``)."""
    return WeeklyWindow(frozenset(range(7)), start, end)


def parse_hours(text: str) -> WeeklyWindow:
    """``"HH:MM-HH:MM"`` every day."""
    start, sep, end = text.partition("-")
    if not sep:
        malformed(f"hours must look like 08:00-20:00, got {text[:20]!r}")
    return daily(_minutes(start.strip()), _minutes(end.strip()))


def format_hours(window: WeeklyWindow) -> str:
    return f"{_clock(window.start)}-{_clock(window.end)}"


def allows(windows: Iterable[WeeklyWindow], moment: datetime, zone: tzinfo) -> bool:
    """Whether ``moment`` (aware) falls in any window on ``zone``'s wall clock."""
    local = moment.astimezone(zone)
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    return any(w.contains(weekday, minute) for w in windows)


def _merged(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def within(inner: Iterable[WeeklyWindow], outer: Iterable[WeeklyWindow]) -> bool:
    """Whether every minute of ``inner`` lies inside ``outer`` (on the wall clock)."""
    cover = _merged(i for w in outer for i in w.intervals())
    for w in inner:
        for a, b in w.intervals():
            if not any(ca <= a and b <= cb for ca, cb in cover):
                return False
    return True
