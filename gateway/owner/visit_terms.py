"""An invitation's terms and its schedule's next window: pure (docs/visitors.md).

The owner's app sends the terms as JSON; :func:`parse_terms` checks every field (a typed
:class:`~gateway.owner.errors.BadAppRequest` otherwise) into :class:`VisitTerms`. The weekly
windows are the ticket's own (:class:`~gateway.trust.schedule.WeeklyWindow`), evaluated by
the door on the gateway's wall clock; :func:`next_window` answers "when may I come next" with
that same evaluator (:func:`~gateway.trust.schedule.allows`), so what the visitor's page says
and what the door does cannot disagree, DST changes included.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from gateway.owner.errors import BadAppRequest
from gateway.trust.claims import IDENTIFIER
from gateway.trust.reasons import TicketError
from gateway.trust.schedule import WeeklyWindow, allows
from gateway.trust.ticket import MAX_USES, MAX_WINDOWS, Purpose

MAX_NAME = 40
MAX_DAYS = 366
MAX_DOORS = 8
MINUTES_A_DAY = 24 * 60


class VisitorKind(enum.StrEnum):
    CLEANER = "cleaner"
    DOG_WALKER = "dog_walker"
    GUEST = "guest"

    @property
    def purpose(self) -> Purpose:
        return Purpose.GUEST if self is VisitorKind.GUEST else Purpose.SERVICE

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class VisitTerms:
    """What the owner grants: who, why, which doors, when, for how long, how often."""

    name: str
    kind: VisitorKind
    doors: tuple[str, ...]
    schedule: tuple[WeeklyWindow, ...]
    days: int
    uses: int
    camera_required: bool
    #: At most this many openings for the whole arrangement, across renewals and doors
    #: (None: ``uses`` per ticket, as before). See :func:`use_key`.
    uses_total: int | None = None
    #: At most this many openings in each window of the schedule (one visit), across doors
    #: (None: no such count). Exclusive with ``uses_total``. See :func:`use_rule`.
    uses_per_window: int | None = None

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {} if self.uses_total is None else {"uses_total": self.uses_total}
        if self.uses_per_window is not None:
            extra["uses_per_window"] = self.uses_per_window
        return {
            "name": self.name,
            "kind": self.kind.value,
            "doors": list(self.doors),
            "schedule": [w.to_claim() for w in self.schedule],
            "days": self.days,
            "uses": self.uses,
            "camera_required": self.camera_required,
            **extra,
        }

    def digest(self) -> str:
        """What the owner's passkey assertion commits to (64 hex characters: an act target)."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _int(body: dict[str, Any], key: str, low: int, high: int) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadAppRequest(f"{key} must be a whole number from {low} to {high}")
    return value


def parse_terms(body: Any, doors_known: frozenset[str]) -> VisitTerms:
    """The terms of an invitation from the app's JSON, or BadAppRequest naming the field."""
    fields = {"name", "kind", "doors", "schedule", "days", "uses", "camera_required"}
    optional = {"uses_total", "uses_per_window"}
    if not isinstance(body, dict) or not fields <= set(body) <= fields | optional:
        listed = ", ".join(sorted(fields))
        raise BadAppRequest(
            f"terms must be an object with exactly {listed} (and optional use counts)"
        )
    if body.get("uses_total") is not None and body.get("uses_per_window") is not None:
        raise BadAppRequest("uses_per_window or uses_total: one count, not both")
    name = " ".join(str(body["name"]).split()) if isinstance(body["name"], str) else ""
    if not 0 < len(name) <= MAX_NAME or not name.isprintable():
        raise BadAppRequest(f"name is 1 to {MAX_NAME} printable characters")
    try:
        kind = VisitorKind(body["kind"])
    except ValueError:
        raise BadAppRequest("kind is cleaner, dog_walker or guest") from None
    doors = body["doors"]
    if (
        not isinstance(doors, list)
        or not 0 < len(doors) <= MAX_DOORS
        or len(set(map(str, doors))) != len(doors)
        or not all(isinstance(d, str) and IDENTIFIER.fullmatch(d) for d in doors)
    ):
        raise BadAppRequest("doors is a list of distinct door names")
    unknown = sorted(set(doors) - doors_known)
    if unknown:
        raise BadAppRequest(f"no door {unknown[0]} on this gateway")
    raw = body["schedule"]
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_WINDOWS:
        raise BadAppRequest(f"schedule is a list of 1 to {MAX_WINDOWS} weekly windows")
    windows: list[WeeklyWindow] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"days", "start", "end"}:
            raise BadAppRequest("a window is {days, start, end}")
        days = item["days"]
        if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
            raise BadAppRequest("a window's days are names mon..sun")
        try:
            windows.append(WeeklyWindow.from_claim(days, item["start"], item["end"]))
        except TicketError as exc:
            raise BadAppRequest(f"schedule: {exc.message}") from None
    camera = body["camera_required"]
    if not isinstance(camera, bool):
        raise BadAppRequest("camera_required must be true or false")
    return VisitTerms(
        name=name,
        kind=kind,
        doors=tuple(doors),
        schedule=tuple(windows),
        days=_int(body, "days", 1, MAX_DAYS),
        uses=_int(body, "uses", 1, MAX_USES),
        camera_required=camera,
        uses_total=None
        if body.get("uses_total") is None
        else _int(body, "uses_total", 1, MAX_USES),
        uses_per_window=None
        if body.get("uses_per_window") is None
        else _int(body, "uses_per_window", 1, MAX_USES),
    )


@dataclass(frozen=True, slots=True)
class UseRule:
    """What one issue of the invitation's tickets carries for the door's use count.

    The door counts uses per (issuer key, ticket id) atomically in the store
    (``store.state.StateTables.consume_use``), so the rule is in the ticket id and ``uses``:

    * ``uses_total``: every ticket of the arrangement (every door, every renewal) carries
      one id derived from the invitation, ``uses = uses_total``: the count is the
      arrangement's.
    * ``uses_per_window``: the ticket is valid for one window only (``nbf``/``exp`` the
      window's, as the door's evaluator finds it) and carries an id derived from the
      invitation and the window's start: the count is the visit's, and a renewal inside the
      same window carries the same id, so renewing gives nothing back.
    * neither: a fresh id per ticket (``jti`` None) and ``uses`` per ticket, as before.
    """

    jti: str | None
    uses: int
    nbf: datetime | None = None
    exp: datetime | None = None


def use_rule(
    invitation_id: str,
    terms: dict[str, Any],
    windows: tuple[WeeklyWindow, ...],
    now: datetime,
    zone: tzinfo,
) -> UseRule | None:
    """The rule for tickets issued ``now`` (see :class:`UseRule`); None when counting per
    window and no window opens within 8 days (nothing to issue)."""
    total = terms.get("uses_total")
    if total is not None:
        return UseRule(f"v-{invitation_id}-all", int(total))
    per_window = terms.get("uses_per_window")
    if per_window is None:
        return UseRule(None, int(terms["uses"]))
    span = visit_span(windows, now, zone)
    if span is None:
        return None
    first, end = span
    return UseRule(
        f"v-{invitation_id}-w{int(first.timestamp()) // 60}", int(per_window), first, end
    )


def visit_span(
    windows: tuple[WeeklyWindow, ...], now: datetime, zone: tzinfo
) -> tuple[datetime, datetime] | None:
    """The occurrence of a schedule window (a window on one local day: one visit) that
    contains ``now``, else the next to begin, as (start, end) in UTC; None if none begins
    within 8 days.

    Fixed by the schedule, not by ``now``: asked again at any minute of the same visit, the
    answer is the same, so the visit's count (keyed on its start) is one. The span is the
    wall-clock window read in ``zone``; the door's evaluator still decides every minute (the
    ticket carries the schedule), so across a DST change the span only bounds the ticket.
    """
    local = now.astimezone(zone).date()
    spans: list[tuple[datetime, datetime]] = []
    for offset in range(-1, 9):
        day = local + timedelta(days=offset)
        for w in windows:
            if day.weekday() not in w.days:
                continue
            start = datetime.combine(day, time(w.start // 60, w.start % 60), zone)
            end_day = day + timedelta(days=1) if w.wraps or w.end == MINUTES_A_DAY else day
            end_minute = w.end % MINUTES_A_DAY
            end = datetime.combine(end_day, time(end_minute // 60, end_minute % 60), zone)
            spans.append((start.astimezone(UTC), end.astimezone(UTC)))
    ahead = sorted(span for span in spans if span[1] > now)
    return ahead[0] if ahead else None


def next_window(
    windows: tuple[WeeklyWindow, ...], now: datetime, zone: tzinfo
) -> tuple[datetime, datetime] | None:
    """The window now open or the next one to open, as (first, last allowed minute + 1),
    found with the door's own evaluator; None if none opens within 8 days."""
    minute = timedelta(minutes=1)
    start = now.replace(second=0, microsecond=0)

    def ok(moment: datetime) -> bool:
        return allows(windows, moment, zone)

    first = start if ok(now) else _first_open(windows, now, zone)
    if first is None:
        return None
    end = first
    # Walk to the window's end minute by minute (a day at most): the evaluator decides.
    limit = first + timedelta(days=1, minutes=1)
    while end < limit and ok(end):
        end += minute
    return first, end


def _first_open(windows: tuple[WeeklyWindow, ...], now: datetime, zone: tzinfo) -> datetime | None:
    """The first minute after ``now`` the evaluator allows: each window's start on each of
    the next 8 local days, then (a start inside a spring-forward gap) the minutes after."""
    local = now.astimezone(zone)
    candidates: list[datetime] = []
    for offset in range(9):
        day = (local + timedelta(days=offset)).date()
        for window in windows:
            if day.weekday() in window.days:
                at = datetime.combine(day, time(window.start // 60, window.start % 60), zone)
                candidates.append(at)
    for at in sorted(c.astimezone(now.tzinfo) for c in candidates):
        if at <= now:
            continue
        for step in range(0, 121):
            moment = at + timedelta(minutes=step)
            if allows(windows, moment, zone):
                return moment
    return None
