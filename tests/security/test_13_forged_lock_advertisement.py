"""Issue 13: a SwitchBot Lock's advertisement carries its bolt and door in clear, and
anyone in radio range can broadcast one from the lock's address. The attack: with the door
locked, put on the air, at the lock's address, an advertisement with a new sequence number
claiming "unlocked, door open". A gateway that believed it would tell its subscribers (the
access session, the owner's app, Home Assistant) the door is open while it is locked, or
the reverse when an attacker hides an open door.

The driver takes a new sequence number only as the cue to read the state over the encrypted
link; the forged claim never reaches a subscriber."""

from __future__ import annotations

import asyncio
from typing import Any

from ble.driver import DoorState, LockState
from ble.switchbot.advertisement import advertising_data
from ble.switchbot.messages import Command, LockInfo, Position
from tests.support.nuki import WAIT, StatusRecorder
from tests.support.switchbot import SwitchBotBench, switchbot_bench

__all__ = ["switchbot_bench"]


async def test_a_forged_advertisement_is_a_cue_to_read_never_the_state(
    switchbot_bench: SwitchBotBench,
) -> None:
    lock = switchbot_bench.lock
    driver = switchbot_bench.driver()
    recorder = StatusRecorder()
    driver.subscribe(recorder)
    read = asyncio.Event()

    class Reads(list[Any]):
        def append(self, item: Any) -> None:
            if item.command is Command.LOCK_INFO:
                read.set()
            super().append(item)

    lock.command_log = Reads(lock.command_log)
    try:
        # The watcher reads the lock when it first hears it: from then on it knows the
        # lock's sequence number.
        await recorder.wait_for(lambda s: s.lock is LockState.LOCKED)
        reads_before = lock.count(Command.LOCK_INFO)
        read.clear()

        forged = LockInfo(calibrated=True, position=Position.UNLOCKED, door_open=True)
        adv_set = switchbot_bench.peripheral.device.legacy_advertising_set
        assert adv_set is not None
        await adv_set.set_advertising_data(
            advertising_data(
                lock.mac, (lock.sequence + 17) % 255 + 1, forged, lock.battery_percent, lock.model
            )
        )
        async with asyncio.timeout(WAIT):
            await read.wait()  # the forged number made the driver read the real lock
        assert (await driver.status()).lock is LockState.LOCKED  # after that read, in order
    finally:
        await driver.close()
    assert lock.count(Command.LOCK_INFO) > reads_before
    assert all(s.lock is not LockState.UNLOCKED for s in recorder.seen)
    assert all(s.door is not DoorState.OPEN for s in recorder.seen)
    assert (lock.position, lock.door_open) == (Position.LOCKED, False)
