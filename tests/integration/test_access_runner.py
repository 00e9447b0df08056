"""The session runner over an in-memory Ledger and a real virtual lock (bleak over Bumble),
once per vendor (the Nuki at each model, the SwitchBot Lock): the fail-closed rules,
emergency single use, the observer, the camera stall, the verified relock."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.access.admission import AccessSettings
from gateway.access.errors import AccessCode, AccessRefused
from gateway.access.observer import (
    AccessEvent,
    AlarmRaised,
    DoorRelocked,
    GrantCommitted,
    OwnerNotification,
)
from gateway.access.policy import PolicyRules
from gateway.access.runner import DoorSlot, SessionContext, SessionRunner
from gateway.access.session import (
    AccessSession,
    CameraStalled,
    Granted,
    NotificationKind,
    RelockCause,
    RelockRequested,
    SessionFacts,
)
from gateway.trust.keys import TrustAnchors
from tests.support.ledger import MemoryLedger
from tests.support.locks import LockBench, lock_bench
from tests.support.nuki import WAIT

__all__ = ["lock_bench"]


class Events:
    """An observer that keeps everything (and can be told to fail)."""

    def __init__(self) -> None:
        self.seen: list[AccessEvent] = []
        self.broken = False

    def observe(self, event: AccessEvent) -> None:
        self.seen.append(event)
        if self.broken:
            raise RuntimeError("observer bug")

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.seen if isinstance(e, kind)]


@dataclass
class Door:
    bench: LockBench
    ledger: MemoryLedger
    events: Events
    context: SessionContext
    slot: DoorSlot
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def session(self, *, purpose: str = "delivery", jti: str | None = None) -> SessionRunner:
        jti = jti or "t-" + secrets.token_hex(4)
        facts = SessionFacts("s-" + secrets.token_hex(6), "front", jti, "courier", purpose, 600)
        use = ("k-owner", jti, 1)
        machine = AccessSession(facts, use=use)
        return SessionRunner(
            self.context,
            machine,
            self.slot,
            b"holder",
            datetime.now(UTC),
            arrived=time.perf_counter(),
        )

    def unlocks(self) -> int:
        return self.bench.view.unlocks()

    @property
    def bolt(self) -> str:
        return self.bench.view.bolt.name


@pytest.fixture
async def door(lock_bench: LockBench) -> AsyncIterator[Door]:
    driver = await lock_bench.driver()
    ledger = MemoryLedger("gw-runner")
    events = Events()
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    settings = AccessSettings(
        "gw-runner", TrustAnchors.of(bytes(32)), UTC, PolicyRules(), lock_timeout_s=WAIT
    )
    context = SessionContext(settings, ledger, events, spawn, lambda: None)
    try:
        yield Door(lock_bench, ledger, events, context, DoorSlot("front", driver), tasks)
    finally:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=WAIT)
        await driver.close()


async def test_a_grant_counts_the_use_with_its_entries_and_the_observer_sees_it(
    door: Door,
) -> None:
    runner = door.session()
    await runner.handle(Granted())
    assert runner.view_or_raise().state == "open"
    assert door.bolt == "UNLOCKED"
    jti = runner.machine.facts.jti
    assert door.ledger.uses == {("k-owner", jti): 1}
    session = runner.machine.facts.session
    assert door.ledger.kinds(session) == ["session.granted", "session.unlocking", "session.open"]
    (grant,) = door.events.of(GrantCommitted)
    assert grant.session == session
    assert grant.since_arrival_s is not None
    assert grant.since_arrival_s >= 0
    await runner.handle(RelockRequested(RelockCause.DONE))
    assert runner.view().state == "closed"
    assert door.bolt == "LOCKED"
    assert door.events.of(DoorRelocked) == [DoorRelocked(session, "front")]


async def test_a_used_up_ticket_is_refused_at_the_write_and_nothing_unlocks(door: Door) -> None:
    first = door.session()
    await first.handle(Granted())
    await first.handle(RelockRequested(RelockCause.DONE))
    again = door.session(jti=first.machine.facts.jti)
    await again.handle(Granted())
    assert again.machine.aborted is AccessCode.USES_EXHAUSTED
    assert door.unlocks() == 1
    assert door.ledger.kinds(again.machine.facts.session) == []


async def test_the_store_down_before_the_unlock_fails_closed(door: Door) -> None:
    door.ledger.failing = True
    runner = door.session()
    await runner.handle(Granted())
    with pytest.raises(AccessRefused) as refused:
        runner.view_or_raise()
    assert refused.value.access_code is AccessCode.STORAGE_UNAVAILABLE
    assert runner.view().state == "denied"
    assert door.unlocks() == 0
    assert door.context.health.writable is False
    assert door.slot.session is None or door.slot.session.machine.ended


async def test_the_store_failing_after_the_door_moved_still_relocks(door: Door) -> None:
    runner = door.session()
    await runner.handle(Granted())
    door.ledger.failing = True
    await runner.handle(RelockRequested(RelockCause.DONE))
    assert runner.view().state == "closed"
    assert door.bolt == "LOCKED"


async def test_an_emergency_opens_with_the_store_down_but_only_once(door: Door) -> None:
    door.ledger.failing = True
    first = door.session(purpose="emergency")
    await first.handle(Granted(alarm=True, alarm_reason="emergency+storage_unwritable"))
    assert first.view_or_raise().state == "open"
    assert door.bolt == "UNLOCKED"
    (told,) = door.events.of(OwnerNotification)
    assert (told.kind, told.text) == (
        NotificationKind.EMERGENCY_ENTRY,
        "emergency+storage_unwritable",
    )
    assert [a.reason for a in door.events.of(AlarmRaised)] == ["emergency+storage_unwritable"]
    await first.handle(RelockRequested(RelockCause.DONE))
    assert door.bolt == "LOCKED"

    second = door.session(purpose="emergency", jti=first.machine.facts.jti)
    await second.handle(Granted(alarm=True, alarm_reason="emergency+storage_unwritable"))
    with pytest.raises(AccessRefused) as refused:
        second.view_or_raise()
    assert refused.value.access_code is AccessCode.USES_EXHAUSTED
    assert door.unlocks() == 1


async def test_a_camera_stall_relocks_an_open_door_and_tells_the_owner(door: Door) -> None:
    runner = door.session()
    await runner.handle(Granted())
    await runner.handle(CameraStalled())
    assert runner.view().state == "closed"
    assert door.bolt == "LOCKED"
    kinds = door.ledger.kinds(runner.machine.facts.session)
    assert kinds[-4:] == ["session.relocking", "camera.stalled", "alarm.raised", "session.closed"]
    assert [n.kind for n in door.events.of(OwnerNotification)] == [NotificationKind.CAMERA_STALLED]


async def test_a_failing_observer_never_touches_the_door(door: Door) -> None:
    door.events.broken = True
    runner = door.session()
    await runner.handle(Granted())
    assert runner.view_or_raise().state == "open"
    await runner.handle(RelockRequested(RelockCause.DONE))
    assert door.bolt == "LOCKED"
