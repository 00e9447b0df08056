"""Visits as the owner sees them: one card per session, from audit entries. Pure.

:func:`visit_cards` groups the entries of each access session (``session.*``, ``alarm.raised``,
``snapshot.*``, ``clip.*``) into a :class:`VisitCard`: who, purpose, issuer, door, times,
outcome, the refusals and alarms with their reasons, the snapshots and clips. Each entry is
*verified* when the whole log verifies up to it (``store.verify.verify_log``: leaf hashes,
tree nodes, signed checkpoints); a clip is verified when, in addition, the file's SHA-256
today equals the hash its ``clip.recorded`` entry holds. A card is verified only when all of
its entries are. :func:`visits_per_day` counts visits per local day for the chart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

#: Final session states and what the card says.
OUTCOMES = {
    "closed": "visited",
    "denied": "refused",
    "failed": "lock failed",
    "alarm": "alarm",
}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One audit entry, as the history needs it."""

    index: int
    time_ms: int
    kind: str
    body: Mapping[str, Any]
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class ClipCheck:
    """What the gateway found for a ``clip.recorded`` entry: the file's hash now (None: the
    file is gone) and whether the clip index row agrees with the entry."""

    file_sha256: str | None
    indexed: bool


@dataclass(slots=True)
class VisitCard:
    session: str
    door: str = ""
    purpose: str = ""
    subject: str = ""
    issuer: str = ""
    started_ms: int = 0
    ended_ms: int = 0
    state: str = ""
    approved_by: str | None = None
    refusals: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    clips: list[dict[str, Any]] = field(default_factory=list)
    entries: list[int] = field(default_factory=list)
    verified: bool = True

    @property
    def outcome(self) -> str:
        return OUTCOMES.get(self.state, "in progress")

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "door": self.door,
            "purpose": self.purpose,
            "subject": self.subject,
            "issuer": self.issuer,
            "started_ms": self.started_ms,
            "ended_ms": self.ended_ms,
            "state": self.state,
            "outcome": self.outcome,
            "approved_by": self.approved_by,
            "refusals": self.refusals,
            "alarms": self.alarms,
            "snapshots": self.snapshots,
            "clips": self.clips,
            "entries": self.entries,
            "verified": self.verified,
        }


@dataclass(frozen=True, slots=True)
class Filters:
    person: str = ""
    purpose: str = ""
    door: str = ""

    def keep(self, card: VisitCard) -> bool:
        if self.person and self.person.casefold() not in card.subject.casefold():
            return False
        if self.purpose and self.purpose != card.purpose:
            return False
        return not (self.door and self.door != card.door)


def _session_of(entry: LogEntry) -> str | None:
    value = entry.body.get("session") or entry.body.get("session_id")
    return value if isinstance(value, str) and value else None


def visit_cards(
    entries: Iterable[LogEntry],
    *,
    bad_from: int | None,
    clips: Mapping[int, ClipCheck],
    filters: Filters = Filters(),
) -> list[VisitCard]:
    """Cards, newest first. ``bad_from``: the first entry the log cannot vouch for (None: the
    whole log verifies); ``clips``: the check of each ``clip.recorded`` entry by index."""
    cards: dict[str, VisitCard] = {}
    for entry in entries:
        session = _session_of(entry)
        if session is None:
            continue
        is_session = entry.kind.startswith("session.")
        card = cards.get(session)
        if card is None:
            if not is_session:
                continue  # a clip of a session this log no longer shows
            card = cards[session] = VisitCard(session, started_ms=entry.time_ms)
        verified = bad_from is None or entry.index < bad_from
        card.verified = card.verified and verified
        card.entries.append(entry.index)
        card.ended_ms = max(card.ended_ms, entry.time_ms)
        body = entry.body
        if is_session:
            card.state = entry.kind.removeprefix("session.")
            card.door = str(body.get("door") or card.door)
            card.purpose = str(body.get("purpose") or card.purpose)
            card.subject = str(body.get("sub") or card.subject)
            card.issuer = str(body.get("iss") or card.issuer)
            if body.get("approved_by"):
                card.approved_by = str(body["approved_by"])
            if card.state == "denied":
                card.refusals.append(
                    {"code": body.get("code"), "why": body.get("why"), "by": body.get("by")}
                )
        elif entry.kind == "alarm.raised":
            card.alarms.append(str(body.get("reason", "")))
        elif entry.kind == "snapshot.saved":
            card.snapshots.append(
                {"entry": entry.index, "moment": body.get("moment"), "verified": verified}
            )
        elif entry.kind == "clip.recorded":
            card.clips.append(_clip(entry, verified, clips.get(entry.index)))
        elif entry.kind == "clip.missing":
            card.clips.append(
                {"entry": entry.index, "status": "missing", "reason": body.get("code")}
            )
    out = [c for c in cards.values() if filters.keep(c)]
    out.sort(key=lambda c: (c.started_ms, c.session), reverse=True)
    return out


def _clip(entry: LogEntry, log_verified: bool, check: ClipCheck | None) -> dict[str, Any]:
    recorded = entry.body.get("sha256")
    out: dict[str, Any] = {
        "entry": entry.index,
        "sha256": recorded,
        "duration_ms": entry.body.get("duration_ms"),
        "sealed": entry.sealed,
    }
    if check is None or check.file_sha256 is None:
        out["status"] = "file_gone"
    elif not log_verified:
        out["status"] = "log_unverified"
    elif check.file_sha256 != recorded or not check.indexed:
        out["status"] = "hash_mismatch"
    else:
        out["status"] = "verified"
    out["verified"] = out["status"] == "verified"
    return out


def visits_per_day(
    cards: Iterable[VisitCard], zone: ZoneInfo, today: dt.date, days: int = 28
) -> list[dict[str, Any]]:
    """Visits started on each of the last ``days`` local days (oldest first, today last)."""
    first = today - dt.timedelta(days=days - 1)
    counts = {first + dt.timedelta(days=i): 0 for i in range(days)}
    for card in cards:
        day = dt.datetime.fromtimestamp(card.started_ms / 1000, zone).date()
        if day in counts:
            counts[day] += 1
    return [{"day": day.isoformat(), "visits": n} for day, n in counts.items()]
