"""An invitation's terms (gateway.owner.visit_terms): every field checked, a typed refusal
naming it; the digest a passkey signs over changes with any term."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.owner.acts import ActKind, Role, may
from gateway.owner.errors import BadAppRequest
from gateway.owner.visit_terms import (
    VisitorKind,
    next_window,
    parse_terms,
    use_rule,
    visit_span,
)
from gateway.trust.schedule import WeeklyWindow
from gateway.trust.ticket import Purpose

DOORS = frozenset({"front", "back"})
GOOD: dict[str, Any] = {
    "name": "Maria",
    "kind": "dog_walker",
    "doors": ["front"],
    "schedule": [{"days": ["mon", "thu"], "start": "09:00", "end": "12:00"}],
    "days": 30,
    "uses": 5,
    "camera_required": True,
}


def test_good_terms_parse_and_map_to_purposes() -> None:
    terms = parse_terms(GOOD, DOORS)
    assert terms.kind is VisitorKind.DOG_WALKER
    assert terms.kind.purpose is Purpose.SERVICE
    assert VisitorKind.GUEST.purpose is Purpose.GUEST
    assert len(terms.digest()) == 64


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 41}, "name"),
        ({"kind": "plumber"}, "kind"),
        ({"doors": []}, "doors"),
        ({"doors": ["front", "front"]}, "doors"),
        ({"doors": ["garage"]}, "no door garage"),
        ({"schedule": []}, "schedule"),
        ({"schedule": [{"days": ["mon"], "start": "09:00", "end": "09:00"}]}, "schedule"),
        ({"schedule": [{"days": ["funday"], "start": "09:00", "end": "10:00"}]}, "schedule"),
        ({"days": 0}, "days"),
        ({"days": True}, "days"),
        ({"uses": 1001}, "uses"),
        ({"camera_required": "yes"}, "camera_required"),
        ({"extra": 1}, "exactly"),
        ({"uses_total": 0}, "uses_total"),
        ({"uses_total": "3"}, "uses_total"),
        ({"uses_per_window": 0}, "uses_per_window"),
        ({"uses_per_window": 2, "uses_total": 3}, "not both"),
    ],
)
def test_bad_terms_are_refused_by_field(change: dict[str, Any], words: str) -> None:
    with pytest.raises(BadAppRequest, match=words):
        parse_terms({**GOOD, **change}, DOORS)


def test_the_digest_commits_to_every_term() -> None:
    base = parse_terms(GOOD, DOORS).digest()
    changes: tuple[dict[str, Any], ...] = (
        {"uses": 6},
        {"doors": ["back"]},
        {"camera_required": False},
        {"uses_total": 5},
        {"uses_per_window": 5},
    )
    for change in changes:
        assert parse_terms({**GOOD, **change}, DOORS).digest() != base


def test_next_window_now_open_and_next_week() -> None:
    zone = ZoneInfo("Europe/London")
    windows = (WeeklyWindow.parse("mon 09:00-12:00"),)
    monday_ten = datetime(2026, 3, 30, 9, 0, tzinfo=UTC)  # 10:00 BST
    named = next_window(windows, monday_ten, zone)
    assert named == (monday_ten, datetime(2026, 3, 30, 11, 0, tzinfo=UTC))
    after = next_window(windows, datetime(2026, 3, 30, 11, 30, tzinfo=UTC), zone)
    assert after is not None
    assert after[0] == datetime(2026, 4, 6, 8, 0, tzinfo=UTC)


def test_a_member_invites_only_if_the_owner_allowed_it_to_open_doors() -> None:
    assert may(Role.OWNER, ActKind.INVITE)
    assert not may(Role.MEMBER, ActKind.INVITE)
    assert may(Role.MEMBER, ActKind.INVITE, may_open=True)


def test_uses_in_all_give_every_ticket_the_arrangement_s_one_count() -> None:
    """With uses_total, every ticket (each door, each renewal) carries one id derived from
    the invitation and the total as its uses: the store's count is then the arrangement's.
    Without, a fresh id per ticket and ``uses`` per ticket, as before."""
    zone = ZoneInfo("Europe/London")
    now = datetime(2026, 3, 30, 9, 30, tzinfo=UTC)
    plain = parse_terms(GOOD, DOORS)
    windows = plain.schedule
    assert plain.uses_total is None
    assert "uses_total" not in plain.to_json()
    rule = use_rule("inv-1", plain.to_json(), windows, now, zone)
    assert rule is not None
    assert (rule.jti, rule.uses, rule.nbf, rule.exp) == (None, 5, None, None)
    total = parse_terms({**GOOD, "uses_total": 3}, DOORS)
    assert total.uses_total == 3
    rule = use_rule("inv-1", total.to_json(), windows, now, zone)
    assert rule is not None
    assert (rule.jti, rule.uses, rule.nbf) == ("v-inv-1-all", 3, None)
    later = use_rule("inv-1", total.to_json(), windows, now + timedelta(days=9), zone)
    assert later is not None
    assert later.jti == "v-inv-1-all"
    assert parse_terms({**GOOD, "uses_total": None}, DOORS).uses_total is None


def test_uses_per_visit_are_keyed_on_the_window_the_schedule_fixes() -> None:
    """Per window: the ticket is the visit's (valid from its start to its end) with an id
    fixed by the schedule, so asking again at any minute of the same visit (a renewal)
    gives the same count; the next visit gets its own."""
    zone = ZoneInfo("Europe/London")
    terms = parse_terms({**GOOD, "uses_per_window": 2}, DOORS).to_json()
    windows = parse_terms(GOOD, DOORS).schedule  # mon, thu 09:00-12:00
    monday_ten = datetime(2026, 3, 30, 9, 0, tzinfo=UTC)  # 10:00 BST, inside Monday's
    first = use_rule("inv-1", terms, windows, monday_ten, zone)
    again = use_rule("inv-1", terms, windows, monday_ten + timedelta(minutes=119), zone)
    assert first is not None
    assert again == first
    assert first.uses == 2
    assert (first.nbf, first.exp) == (
        datetime(2026, 3, 30, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 11, 0, tzinfo=UTC),
    )
    after = use_rule("inv-1", terms, windows, monday_ten + timedelta(hours=2), zone)
    assert after is not None
    assert after.jti != first.jti
    assert after.nbf == datetime(2026, 4, 2, 8, 0, tzinfo=UTC)  # Thursday 09:00 BST
    # Across the spring-forward night: a window on the Sunday, in GMT until 01:00.
    sunday = (WeeklyWindow.parse("sun 00:00-24:00"),)
    span = visit_span(sunday, datetime(2026, 3, 29, 12, 0, tzinfo=UTC), zone)
    assert span == (
        datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 23, 0, tzinfo=UTC),
    )
    # A window past midnight belongs to the day it starts.
    late = (WeeklyWindow.parse("fri 22:00-02:00"),)
    saturday_one = datetime(2026, 4, 4, 0, 0, tzinfo=UTC)  # 01:00 BST on Saturday
    assert visit_span(late, saturday_one, zone) == (
        datetime(2026, 4, 3, 21, 0, tzinfo=UTC),
        datetime(2026, 4, 4, 1, 0, tzinfo=UTC),
    )
