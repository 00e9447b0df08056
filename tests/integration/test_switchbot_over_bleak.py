"""The SwitchBot Lock driver over real bleak, bleak-retry-connector and the Bumble backend,
against the virtual SwitchBot Lock: state reads, unlock/lock/unlatch each followed by the
lock's own report, subscribers seeing changes by hand through the advertisement's sequence
number, scanning, a revoked key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ble.driver import DoorState, LockState
from ble.errors import LockNotAuthorized
from ble.switchbot.driver import SwitchBotCredentials, SwitchBotDriver, scan_switchbot
from ble.switchbot.messages import Command, SwitchBotAction
from ble.switchbot.models import SwitchBotModel
from tests.support.nuki import WAIT, StatusRecorder
from tests.support.switchbot import SWITCHBOT_TIMEOUTS, SwitchBotBench, switchbot_bench

__all__ = ["switchbot_bench"]


async def test_status_unlock_lock_and_unlatch(switchbot_bench: SwitchBotBench) -> None:
    lock = switchbot_bench.lock
    driver = switchbot_bench.driver()
    try:
        status = await driver.status()
        assert (status.lock, status.door) == (LockState.LOCKED, DoorState.CLOSED)
        assert status.battery_percent == lock.battery_percent
        assert not status.battery_critical

        assert (await driver.unlock()).lock is LockState.UNLOCKED
        assert lock.position.name == "UNLOCKED"
        assert (await driver.lock()).lock is LockState.LOCKED
        assert lock.position.name == "LOCKED"
        assert (await driver.unlatch()).lock is LockState.UNLOCKED
        assert (await driver.status()).lock is LockState.UNLOCKED
    finally:
        await driver.close()
    assert lock.count(Command.ACTION, SwitchBotAction.UNLOCK) == 1
    assert lock.count(Command.ACTION, SwitchBotAction.LOCK) == 1
    assert lock.count(Command.ACTION, SwitchBotAction.UNLATCH) == 1


async def test_subscribers_see_the_motor_and_a_door_opened_by_hand(
    switchbot_bench: SwitchBotBench,
) -> None:
    driver = switchbot_bench.driver()
    recorder = StatusRecorder()
    driver.subscribe(recorder)
    try:
        await driver.unlock()
        await recorder.wait_for(lambda s: s.lock is LockState.UNLOCKING)
        await recorder.wait_for(lambda s: s.lock is LockState.UNLOCKED)
        # Nobody asked: the advertisement's sequence number moves, the driver reads.
        switchbot_bench.lock.open_door()
        await recorder.wait_for(lambda s: s.door is DoorState.OPEN)
        switchbot_bench.lock.turn_knob(locked=True)
        await recorder.wait_for(lambda s: s.lock is LockState.LOCKED and s.door is DoorState.OPEN)
    finally:
        await driver.close()


async def test_low_battery_is_critical_on_every_read(switchbot_bench: SwitchBotBench) -> None:
    switchbot_bench.lock.set_battery(12)
    driver = switchbot_bench.driver()
    try:
        status = await driver.status()
        assert status.battery_percent == 12
        assert status.battery_critical
    finally:
        await driver.close()


async def test_scan_finds_the_lock_from_its_advertisement(
    switchbot_bench: SwitchBotBench,
) -> None:
    found = await scan_switchbot(switchbot_bench.transport, scan_s=1.0)
    assert [lock.address for lock in found] == [switchbot_bench.peripheral.address]
    assert found[0].battery_percent == switchbot_bench.lock.battery_percent


async def test_a_key_the_lock_does_not_know_is_not_authorized(
    switchbot_bench: SwitchBotBench,
) -> None:
    known = switchbot_bench.credentials()
    wrong = SwitchBotCredentials(known.address, known.key_id + 1, known.encryption_key, known.model)
    driver = SwitchBotDriver(wrong, switchbot_bench.transport, SWITCHBOT_TIMEOUTS)
    try:
        with pytest.raises(LockNotAuthorized):
            await driver.unlock()
    finally:
        await driver.close()
    assert switchbot_bench.lock.count(Command.ACTION) == 0


INSTALL_HINT = "pySwitchbot is missing: run ./scripts/setup.sh --test (PySwitchbot is a test extra)"


def pyswitchbot() -> Any:
    try:
        import switchbot
    except ImportError:  # the hint is the point
        pytest.fail(INSTALL_HINT)
    return switchbot


async def heard_by_pyswitchbot(bench: SwitchBotBench) -> dict[str, Any]:
    """The lock's advertisement as heard on the virtual radio through bleak, parsed by
    pySwitchbot's public parser (Home Assistant's, written against real locks)."""
    from bleak import BleakScanner

    parse_advertisement_data = pyswitchbot().parse_advertisement_data

    address = bench.peripheral.address
    expected = bench.lock.sequence
    heard: dict[str, Any] = {}
    current = asyncio.Event()

    def on_advertisement(device: Any, adv: Any) -> None:
        if device.address.upper() != address:
            return
        parsed = parse_advertisement_data(device, adv)
        data = parsed.data if parsed is not None else {}
        if data.get("data", {}).get("sequence_number") == expected:
            heard.update(data)
            current.set()

    scanner = BleakScanner(on_advertisement, **bench.transport.scanner_kwargs())
    await scanner.start()
    try:
        async with asyncio.timeout(WAIT):
            await current.wait()
    finally:
        await scanner.stop()
    return heard


async def test_an_independent_parser_reads_the_advertisement_as_ours_does(
    switchbot_bench: SwitchBotBench,
) -> None:
    """lock.md, "Lock Broadcast Message": pySwitchbot sees a Lock ('o') or a Lock Pro ('$'),
    its battery, the sequence number, the bolt and the door, before and after changes."""
    library = pyswitchbot()
    PyLockStatus, SwitchbotModel = library.LockStatus, library.SwitchbotModel

    lock = switchbot_bench.lock
    first = await heard_by_pyswitchbot(switchbot_bench)
    expected = {
        SwitchBotModel.LOCK: ("o", SwitchbotModel.LOCK),
        SwitchBotModel.LOCK_PRO: ("$", SwitchbotModel.LOCK_PRO),
    }[lock.model]
    assert (first["model"], first["modelName"]) == expected
    data = first["data"]
    assert data["battery"] == lock.battery_percent
    assert data["calibration"] is True
    assert data["status"] is PyLockStatus.LOCKED
    assert data["door_open"] is False

    lock.turn_knob(locked=False)
    lock.open_door()
    lock.set_battery(55)
    data = (await heard_by_pyswitchbot(switchbot_bench))["data"]
    assert (data["status"], data["door_open"], data["battery"]) == (
        PyLockStatus.UNLOCKED,
        True,
        55,
    )
