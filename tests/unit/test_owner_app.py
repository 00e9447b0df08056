"""The owner app's pure parts and its in-memory guards: acts and the challenge's commitment,
roles, notices, visit cards with their verification, sessions and CSRF, ceremonies taken once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.access.errors import AccessCode
from gateway.access.observer import (
    AlarmRaised,
    DoorRelocked,
    GrantCommitted,
    OwnerNotification,
    RequestRefused,
)
from gateway.access.session import NotificationKind
from gateway.owner.acts import Act, ActKind, Role, act_challenge, may, parse_act
from gateway.owner.app import AppSettings, OwnerApp, _Ceremony
from gateway.owner.errors import AssertionRefused, BadAppRequest, CsrfRefused, NotSignedIn
from gateway.owner.feed import LiveFeed, OwnerNotifier
from gateway.owner.history import ClipCheck, Filters, LogEntry, visit_cards, visits_per_day
from gateway.owner.notices import Notice, NoticeKind, notice_for
from gateway.owner.sessions import AppSessions

NONCE = bytes(range(32))


def test_the_challenge_commits_to_the_act_the_device_and_the_nonce() -> None:
    approve = Act(ActKind.APPROVE, "s-1")
    base = act_challenge(approve, "d-1", NONCE)
    assert len(base) == 32
    assert act_challenge(approve, "d-1", NONCE) == base
    assert act_challenge(Act(ActKind.APPROVE, "s-2"), "d-1", NONCE) != base
    assert act_challenge(Act(ActKind.DENY, "s-1"), "d-1", NONCE) != base
    assert act_challenge(Act(ActKind.UNLOCK, "s-1"), "d-1", NONCE) != base
    assert act_challenge(approve, "d-2", NONCE) != base
    assert act_challenge(approve, "d-1", bytes(32)) != base
    with pytest.raises(ValueError, match="32 bytes"):
        act_challenge(approve, "d-1", b"short")


def test_a_member_watches_and_locks_but_opens_nothing() -> None:
    assert all(may(Role.OWNER, kind) for kind in ActKind)
    assert may(Role.MEMBER, ActKind.LOCK)
    assert may(Role.MEMBER, ActKind.SIGN_IN)
    for kind in (ActKind.APPROVE, ActKind.DENY, ActKind.UNLOCK):
        assert not may(Role.MEMBER, kind)
        # ... unless the owner allowed this device.
        assert may(Role.MEMBER, kind, may_open=True)


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {"kind": "open_all"},
        {"kind": "approve"},
        {"kind": "unlock", "target": 3},
        {"kind": "unlock", "target": "x" * 65},
        {"kind": "unlock", "target": "front", "extra": 1},
    ],
)
def test_bad_acts_are_refused(value: Any) -> None:
    with pytest.raises(BadAppRequest):
        parse_act(value)


def test_acts_parse() -> None:
    assert parse_act({"kind": "unlock", "target": "front"}) == Act(ActKind.UNLOCK, "front")
    assert parse_act({"kind": "sign_in"}) == Act(ActKind.SIGN_IN)


def test_notices_say_what_happened_in_the_owners_words() -> None:
    courier = notice_for(GrantCommitted("s-1", "front", "delivery", "parcelco", 0.01), 5)
    assert courier == Notice(
        NoticeKind.COURIER_ARRIVED,
        "front",
        "s-1",
        "delivery",
        "Courier at the front door",
        True,
        5,
        "parcelco",
    )
    assert courier.to_json()["subject"] == "parcelco"
    cleaner = notice_for(GrantCommitted("s-2", "back", "service", "cleaner", None), 5)
    assert cleaner is not None
    assert not cleaner.alert
    survey = notice_for(
        OwnerNotification(
            NotificationKind.APPROVAL_NEEDED, "front", "s-3", "survey", "surveyor", "approval"
        ),
        5,
    )
    assert survey is not None
    assert survey.text == "Survey waiting for your approval at the front door"
    assert survey.to_json()["screen"] == "approve"
    for kind, text in [
        (NotificationKind.EMERGENCY_ENTRY, "Emergency entry at the front door"),
        (NotificationKind.RELOCK_FAILED, "The front door did not lock again"),
        (NotificationKind.CAMERA_STALLED, "Camera stopped during a visit"),
        (
            NotificationKind.DOOR_LEFT_OPEN,
            "The front door was left open longer than the ticket allows",
        ),
    ]:
        notice = notice_for(OwnerNotification(kind, "front", "s", "delivery", "bob", "x"), 1)
        assert notice is not None
        assert notice.alert
        assert notice.text == text
    clock = notice_for(
        OwnerNotification(NotificationKind.CLOCK_FLOOR_AHEAD, "", "", "", "", "clock behind"), 1
    )
    assert clock is not None
    assert (clock.kind, clock.text, clock.alert, clock.subject) == (
        NoticeKind.CLOCK_FLOOR_AHEAD,
        "clock behind",
        True,
        "",
    )
    relocked = notice_for(DoorRelocked("s", "front"), 1)
    assert relocked is not None
    assert not relocked.alert
    assert notice_for(RequestRefused(AccessCode.BAD_TOKEN, "front", None), 1) is None
    assert notice_for(AlarmRaised("s", "front", "x"), 1) is None


async def test_the_notifier_tells_every_notifier_and_survives_a_broken_one() -> None:
    class Broken:
        def notify(self, notice: Notice) -> None:
            raise RuntimeError("down")

    feed = LiveFeed()
    notifier = OwnerNotifier([Broken(), feed], clock_ms=lambda: 7)
    stream = feed.subscribe("d-1", 0)
    event = GrantCommitted("s-1", "front", "delivery", "alice", None)
    notifier.observe(event)
    item = await stream.next(1.0)
    assert item is not None
    assert item.notice.kind is NoticeKind.COURIER_ARRIVED
    # A device's streams end at once (revoked); the others go on; a reconnect resumes.
    other = feed.subscribe("d-2", 0)
    assert feed.end_device("d-1") == 1
    assert await stream.next(1.0) is None
    assert (await other.next(1.0)) is not None
    assert [i.seq for i in feed.subscribe("d-2", 0).backlog] == [1]


def _entry(index: int, kind: str, session: str, **body: Any) -> LogEntry:
    return LogEntry(index, 1_700_000_000_000 + index * 1000, kind, {"session": session, **body})


def test_visit_cards_group_a_session_and_verify_its_clip() -> None:
    entries = [
        _entry(0, "session.granted", "s-1", door="front", purpose="delivery", sub="Ana", iss="DHL"),
        _entry(1, "session.open", "s-1", door="front", purpose="delivery", sub="Ana"),
        _entry(2, "snapshot.saved", "s-1", moment="grant"),
        _entry(3, "session.closed", "s-1", door="front", purpose="delivery", sub="Ana"),
        LogEntry(4, 1, "clip.recorded", {"session_id": "s-1", "sha256": "ab"}),
        _entry(
            5, "session.denied", "s-2", door="back", purpose="service", sub="Bo", code="expired"
        ),
    ]
    cards = visit_cards(entries, bad_from=None, clips={4: ClipCheck("ab", True)})
    assert [c.session for c in cards] == ["s-2", "s-1"]
    ana = cards[1]
    assert (ana.subject, ana.issuer, ana.outcome, ana.verified) == ("Ana", "DHL", "visited", True)
    assert ana.clips[0]["status"] == "verified"
    assert cards[0].refusals == [{"code": "expired", "why": None, "by": None}]
    # The file changed: the hash no longer matches the entry.
    changed = visit_cards(entries, bad_from=None, clips={4: ClipCheck("cd", True)})
    assert changed[1].clips[0]["status"] == "hash_mismatch"
    # The log stops verifying at entry 3: the session and its clip are unverified.
    broken = visit_cards(entries, bad_from=3, clips={4: ClipCheck("ab", True)})
    assert not broken[1].verified
    assert broken[1].clips[0]["status"] == "log_unverified"
    gone = visit_cards(entries, bad_from=None, clips={4: ClipCheck(None, True)})
    assert gone[1].clips[0]["status"] == "file_gone"
    assert [c.session for c in cards if Filters(person="an").keep(c)] == ["s-1"]
    assert [c.session for c in cards if Filters(door="back").keep(c)] == ["s-2"]


def test_visits_per_day_counts_local_days() -> None:
    zone = ZoneInfo("Europe/London")
    cards = visit_cards(
        [_entry(0, "session.closed", "s-1"), _entry(1, "session.closed", "s-2")],
        bad_from=None,
        clips={},
    )
    day = dt.datetime.fromtimestamp(1_700_000_000, zone).date()
    counts = visits_per_day(cards, zone, day, days=3)
    assert counts[-1] == {"day": day.isoformat(), "visits": 2}
    assert [c["visits"] for c in counts[:-1]] == [0, 0]


def test_sessions_expire_end_with_their_device_and_check_csrf() -> None:
    now = [0.0]
    sessions = AppSessions(60.0, clock=lambda: now[0])
    cookie, session = sessions.start("d-1", Role.OWNER)
    assert sessions.get(cookie) is session
    sessions.check_csrf(session, session.csrf)
    for wrong in (None, "", session.csrf + "x"):
        with pytest.raises(CsrfRefused):
            sessions.check_csrf(session, wrong)
    other, _ = sessions.start("d-2", Role.MEMBER)
    assert sessions.end_device("d-1") == 1
    with pytest.raises(NotSignedIn):
        sessions.get(cookie)
    assert sessions.get(other).device_id == "d-2"
    now[0] = 61.0
    with pytest.raises(NotSignedIn):
        sessions.get(other)
    with pytest.raises(NotSignedIn):
        sessions.get(None)


def _bare_app() -> OwnerApp:
    settings = AppSettings(rp_id="localhost", zone=ZoneInfo("UTC"))
    return OwnerApp(settings, None, None, feed=LiveFeed())  # type: ignore[arg-type]


def test_a_ceremony_is_taken_once() -> None:
    app = _bare_app()
    challenge = secrets.token_bytes(32)
    ceremony_id = app._begin(challenge, app._ceremony("assert", act=Act(ActKind.SIGN_IN)))
    assert app._take(ceremony_id, "assert")[0] == challenge
    with pytest.raises(AssertionRefused, match="unknown, used or expired"):
        app._take(ceremony_id, "assert")


async def test_an_assertion_for_one_act_is_refused_for_another() -> None:
    app = _bare_app()
    _cookie, session = app.sessions.start("d-1", Role.OWNER)
    nonce = secrets.token_bytes(32)
    deny = Act(ActKind.DENY, "s-1")
    ceremony_id = app._begin(
        act_challenge(deny, "d-1", nonce), _Ceremony("assert", 1e18, act=deny, device_id="d-1")
    )
    with pytest.raises(AssertionRefused, match="another act or device"):
        await app.perform(session, Act(ActKind.UNLOCK, "front"), ceremony_id, {"rawId": "AA"})
