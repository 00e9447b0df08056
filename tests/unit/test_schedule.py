"""Weekly windows on the wall clock, checked against a brute-force reference over DST years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.trust.reasons import TicketError
from gateway.trust.schedule import WeeklyWindow, allows, parse_hours, within

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def reference_table(spec_days: set[int], start: int, end: int) -> list[list[bool]]:
    """Mark every (weekday, minute) a window covers by walking it minute by minute."""
    table = [[False] * 1440 for _ in range(7)]
    length = (end - start) % 1440 or 1440
    for day in spec_days:
        for offset in range(length):
            absolute = day * 1440 + start + offset
            table[(absolute // 1440) % 7][absolute % 1440] = True
    return table


def scan_year(window: WeeklyWindow, zone: ZoneInfo, year: int) -> tuple[int, int]:
    """Compare with the reference at every minute of a year; return (checked, allowed)."""
    table = reference_table(set(window.days), window.start, window.end)
    moment = datetime(year, 1, 1, tzinfo=UTC)
    stop = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(minutes=1)
    checked = allowed = 0
    while moment < stop:
        local = moment.astimezone(zone)
        expected = table[local.weekday()][local.hour * 60 + local.minute]
        got = allows((window,), moment, zone)
        assert got == expected, (moment, local)
        checked += 1
        allowed += got
        moment += step
    return checked, allowed


@pytest.mark.parametrize(
    ("zone", "lost", "repeated"),
    [
        # London skips 01:00-02:00 (window loses 01:30-02:00) and repeats 01:00-02:00.
        (LONDON, 30, 30),
        # New York skips 02:00-03:00 (all inside) and repeats 01:00-02:00 (half inside).
        (NEW_YORK, 60, 30),
    ],
    ids=["London", "New_York"],
)
def test_spring_forward_window_agrees_with_reference_all_year(
    zone: ZoneInfo, lost: int, repeated: int
) -> None:
    window = WeeklyWindow.parse("sun 01:30-03:30")
    checked, allowed = scan_year(window, zone, 2026)
    assert checked == 365 * 1440
    # 2026 has 52 Sundays of 120 wall-clock minutes each, give or take the DST days.
    assert allowed == 52 * 120 - lost + repeated


@pytest.mark.parametrize("zone", [LONDON, NEW_YORK], ids=str)
def test_sunday_into_monday_window_agrees_with_reference_all_year(zone: ZoneInfo) -> None:
    window = WeeklyWindow.parse("sun 22:00-06:00")
    assert window.wraps
    scan_year(window, zone, 2026)


def test_spring_forward_edges_in_london() -> None:
    # 2026-03-29: at 01:00 UTC London jumps from 01:00 GMT to 02:00 BST.
    window = WeeklyWindow.parse("sun 00:30-01:30")
    assert allows((window,), datetime(2026, 3, 29, 0, 45, tzinfo=UTC), LONDON)
    # 01:00 UTC is 02:00 local: past the window although only 30 minutes have passed.
    assert not allows((window,), datetime(2026, 3, 29, 1, 0, tzinfo=UTC), LONDON)
    # On the autumn Sunday 01:00-02:00 local happens twice; both are inside 00:30-01:30's
    # first half hour only, so check the repeated 01:15.
    first = datetime(2026, 10, 25, 0, 15, tzinfo=UTC)  # 01:15 BST
    second = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 01:15 GMT
    assert allows((window,), first, LONDON)
    assert allows((window,), second, LONDON)


def test_sunday_into_monday_edges_in_new_york() -> None:
    window = WeeklyWindow.parse("sun 22:00-06:00")
    monday_5am = datetime(2026, 6, 8, 5, 59, tzinfo=NEW_YORK)
    monday_6am = datetime(2026, 6, 8, 6, 0, tzinfo=NEW_YORK)
    saturday_11pm = datetime(2026, 6, 6, 23, 0, tzinfo=NEW_YORK)
    assert allows((window,), monday_5am, NEW_YORK)
    assert not allows((window,), monday_6am, NEW_YORK)
    assert not allows((window,), saturday_11pm, NEW_YORK)


@settings(max_examples=60, deadline=None)
@given(
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=st.integers(0, 1439),
    end=st.integers(1, 1440),
    minutes=st.lists(st.integers(0, 366 * 1440), min_size=50, max_size=50),
    zone=st.sampled_from([LONDON, NEW_YORK]),
)
def test_random_windows_agree_with_reference(
    days: frozenset[int], start: int, end: int, minutes: list[int], zone: ZoneInfo
) -> None:
    if start == end:
        return
    window = WeeklyWindow(days, start, end)
    table = reference_table(set(days), start, end)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for m in minutes:
        moment = base + timedelta(minutes=m)
        local = moment.astimezone(zone)
        assert (
            allows((window,), moment, zone)
            == table[local.weekday()][local.hour * 60 + local.minute]
        )


@settings(max_examples=80, deadline=None)
@given(
    inner=st.tuples(
        st.frozensets(st.integers(0, 6), min_size=1), st.integers(0, 1439), st.integers(1, 1440)
    ),
    outer=st.tuples(st.integers(0, 1439), st.integers(1, 1440)),
)
def test_within_agrees_with_reference(
    inner: tuple[frozenset[int], int, int], outer: tuple[int, int]
) -> None:
    if inner[1] == inner[2] or outer[0] == outer[1]:
        return
    a = WeeklyWindow(*inner)
    b = WeeklyWindow(frozenset(range(7)), *outer)
    ta = reference_table(set(a.days), a.start, a.end)
    tb = reference_table(set(b.days), b.start, b.end)
    expected = all(tb[d][m] for d in range(7) for m in range(1440) if ta[d][m])
    assert within((a,), (b,)) == expected


def test_parse_forms_and_errors() -> None:
    assert WeeklyWindow.parse("mon-fri 09:00-17:00").days == frozenset(range(5))
    assert WeeklyWindow.parse("sat-mon 10:00-24:00").days == frozenset({5, 6, 0})
    assert parse_hours("08:00-20:00").days == frozenset(range(7))
    for bad in (
        "mon 9:00-10:00",
        "funday 09:00-10:00",
        "mon 09:00-09:00",
        "mon 25:00-26:00",
        "mon",
        "08:00-20:00",
    ):
        with pytest.raises(TicketError):
            WeeklyWindow.parse(bad)
