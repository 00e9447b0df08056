"""Vendor-neutral test support: the lock invariants (docs/locks.md) are tested once, over
every vendor's driver and virtual lock.

:class:`LockBench` is a virtual lock of either vendor on a virtual radio with a driver that
holds its key, and the vendor's own way of counting commands and injecting faults;
:func:`lock_bench` runs a test once per vendor (the Nuki at each model). :class:`VirtualLockView`
gives gateway-level tests the same view of a ``sim`` or ``sim-switchbot`` door's lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ble.bumble_backend import VirtualRadio
from ble.driver import LockDriver, LockState
from ble.nuki.frames import Command as NukiCommand
from ble.nuki.messages import LockAction, NukiLockState
from ble.nuki.models import NukiModel
from ble.sim.lock import VirtualNukiLock
from ble.sim.peripheral import VirtualNukiPeripheral
from ble.sim.switchbot_lock import VirtualSwitchBotLock
from ble.sim.vendor import SimulatedDoor
from ble.switchbot.messages import Command as SwitchBotCommand
from ble.switchbot.messages import Position, SwitchBotAction
from ble.switchbot.models import SwitchBotModel
from tests.support.nuki import LOCK_ADDRESS, TEST_TIMEOUTS, WAIT, bumble_transport
from tests.support.switchbot import SWITCHBOT_TIMEOUTS, open_switchbot_bench

_NUKI_BOLT = {
    NukiLockState.LOCKED: LockState.LOCKED,
    NukiLockState.UNLOCKED: LockState.UNLOCKED,
    NukiLockState.UNLATCHED: LockState.UNLOCKED,
    NukiLockState.UNLOCKING: LockState.UNLOCKING,
    NukiLockState.LOCKING: LockState.LOCKING,
    NukiLockState.MOTOR_BLOCKED: LockState.JAMMED,
}
_SWITCHBOT_BOLT = {
    Position.LOCKED: LockState.LOCKED,
    Position.UNLOCKED: LockState.UNLOCKED,
    Position.UNLOCKING: LockState.UNLOCKING,
    Position.LOCKING: LockState.LOCKING,
    Position.LOCKING_STOP: LockState.JAMMED,
    Position.UNLOCKING_STOP: LockState.JAMMED,
    Position.NOT_FULLY_LOCKED: LockState.UNLOCKED,
    Position.HALF_LOCKED: LockState.UNLOCKED,
}


class VirtualLockView:
    """One virtual lock, either vendor's, as the invariant tests see it: its bolt, the
    unlock and lock commands it received, state reads, its faults and its door."""

    def __init__(self, lock: VirtualNukiLock | VirtualSwitchBotLock) -> None:
        self.lock = lock

    @property
    def vendor(self) -> str:
        return "nuki" if isinstance(self.lock, VirtualNukiLock) else "switchbot"

    @property
    def bolt(self) -> LockState:
        if isinstance(self.lock, VirtualNukiLock):
            return _NUKI_BOLT.get(self.lock.lock_state, LockState.UNKNOWN)
        return _SWITCHBOT_BOLT.get(self.lock.position, LockState.UNKNOWN)

    @property
    def faults(self) -> Any:
        """``jam_motor``, ``drop_link_on_action`` and ``reply_delay_s``, the same for both."""
        return self.lock.faults

    def unlocks(self) -> int:
        if isinstance(self.lock, VirtualNukiLock):
            return self.lock.count(NukiCommand.LOCK_ACTION, LockAction.UNLOCK)
        return self.lock.count(SwitchBotCommand.ACTION, SwitchBotAction.UNLOCK)

    def actions(self) -> int:
        if isinstance(self.lock, VirtualNukiLock):
            return self.lock.count(NukiCommand.LOCK_ACTION)
        return self.lock.count(SwitchBotCommand.ACTION)

    def state_reads(self) -> int:
        if isinstance(self.lock, VirtualNukiLock):
            return self.lock.count_requests(NukiCommand.KEYTURNER_STATES)
        return self.lock.count(SwitchBotCommand.LOCK_INFO)

    def set_motor_seconds(self, seconds: float) -> None:
        self.lock.motor_seconds = seconds

    def garble_state_replies(self, count: int) -> None:
        """Make the next ``count`` state replies unreadable."""
        faults = self.lock.faults
        if isinstance(self.lock, VirtualNukiLock):
            faults.corrupt_crc_replies, faults.corrupt_only = count, NukiCommand.KEYTURNER_STATES
        else:
            faults.garble_replies, faults.garble_only = count, SwitchBotCommand.LOCK_INFO

    def garble_action_reply(self) -> None:
        """Make the lock's first answer after the action frame unreadable."""
        faults = self.lock.faults
        if isinstance(self.lock, VirtualNukiLock):
            faults.corrupt_crc_replies, faults.corrupt_only = 1, NukiCommand.STATUS
        else:
            faults.garble_replies, faults.garble_only = 1, SwitchBotCommand.ACTION

    def garble_first_reply(self) -> None:
        """Make the lock's first answer to an action (before the action frame) unreadable."""
        faults = self.lock.faults
        if isinstance(self.lock, VirtualNukiLock):
            faults.corrupt_crc_replies, faults.corrupt_only = 1, NukiCommand.CHALLENGE
        else:
            faults.garble_replies, faults.garble_only = 1, SwitchBotCommand.IV

    def on_action(self, callback: Callable[[str], None]) -> None:
        """Call ``callback('UNLOCK')`` (or ``'LOCK'``) as the lock receives an action."""
        lock = self.lock

        class Recorded(list[Any]):
            def append(self, item: Any) -> None:
                if isinstance(lock, VirtualNukiLock):
                    if item.command is NukiCommand.LOCK_ACTION:
                        callback(item.action.name)
                elif item.command is SwitchBotCommand.ACTION:
                    callback(item.action.name)
                super().append(item)

        lock.command_log = Recorded(lock.command_log)

    def open_door(self) -> None:
        self.lock.open_door()

    def close_door(self) -> None:
        self.lock.close_door()

    def on_state_change(self, listener: Callable[[], None]) -> None:
        self.lock.on_state_change(listener)

    async def settled(self) -> None:
        """Until the driver has read the lock's last change: a Nuki's beacon flag clears
        when its states are read. A SwitchBot Lock's advertisement has no such flag (every
        change moves its sequence number), so there is nothing to wait for."""
        lock = self.lock
        if not isinstance(lock, VirtualNukiLock):
            return
        flag = asyncio.Event()
        lock.on_state_change(flag.set)
        async with asyncio.timeout(WAIT):
            while lock.new_state_available:
                flag.clear()
                await flag.wait()

    async def wait_bolt(self, state: LockState, limit_s: float = WAIT) -> None:
        changed = asyncio.Event()
        self.lock.on_state_change(changed.set)
        async with asyncio.timeout(limit_s):
            while self.bolt is not state:
                changed.clear()
                await changed.wait()


def view_of(door: object) -> VirtualLockView:
    """The view of a ``sim`` or ``sim-switchbot`` door's handle."""
    lock = getattr(door, "lock", None)
    assert isinstance(lock, VirtualNukiLock | VirtualSwitchBotLock), door
    return VirtualLockView(lock)


@dataclass
class LockBench:
    """A virtual lock of one vendor on a virtual radio, and how to drive it."""

    radio: VirtualRadio
    view: VirtualLockView
    peripheral: VirtualNukiPeripheral | Any
    _driver: Callable[[dict[str, float]], Any]

    @property
    def vendor(self) -> str:
        return self.view.vendor

    async def driver(self, **timeouts: float) -> LockDriver:
        """A driver holding the lock's key (a Nuki is paired first), with test timeouts
        changed by ``timeouts`` (``step_s=0.4``, ...)."""
        made: LockDriver = await self._driver(timeouts)
        return made

    async def out_of_range(self) -> None:
        await self.radio.remove(self.peripheral.device)


async def _nuki_bench(radio: VirtualRadio, model: NukiModel) -> LockBench:
    from ble.nuki.driver import NukiDriver, pair_nuki

    lock = VirtualNukiLock(motor_seconds=0.05, model=model)
    peripheral = await VirtualNukiPeripheral.join(radio, lock, LOCK_ADDRESS)
    transport = bumble_transport(radio)

    async def driver(timeouts: dict[str, float]) -> NukiDriver:
        await peripheral.press_button_for_pairing()
        pairing = await pair_nuki(
            peripheral.address, "Threshold test", transport=transport, timeouts=TEST_TIMEOUTS
        )
        return NukiDriver(pairing, transport, dataclasses.replace(TEST_TIMEOUTS, **timeouts))

    return LockBench(radio, VirtualLockView(lock), peripheral, driver)


async def _switchbot_bench(radio: VirtualRadio, model: SwitchBotModel) -> LockBench:
    from ble.switchbot.driver import SwitchBotDriver

    bench = await open_switchbot_bench(radio, model)

    async def driver(timeouts: dict[str, float]) -> SwitchBotDriver:
        return SwitchBotDriver(
            bench.credentials(),
            bench.transport,
            dataclasses.replace(SWITCHBOT_TIMEOUTS, **timeouts),
        )

    return LockBench(radio, VirtualLockView(bench.lock), bench.peripheral, driver)


LOCK_VENDORS = [
    *(f"nuki-{model.value}" for model in NukiModel),
    *(f"switchbot-{model.value}" for model in SwitchBotModel),
]


@pytest.fixture(params=LOCK_VENDORS)
async def lock_bench(request: pytest.FixtureRequest) -> AsyncIterator[LockBench]:
    """A virtual lock on a virtual radio; every test using it runs once per vendor and model
    (the Nuki 2.0, 3.0 and 4.0; the SwitchBot Lock and Lock Pro)."""
    async with VirtualRadio() as radio:
        kind: str = request.param
        if kind.startswith("switchbot-"):
            bench = await _switchbot_bench(radio, SwitchBotModel(kind.removeprefix("switchbot-")))
        else:
            bench = await _nuki_bench(radio, NukiModel(kind.removeprefix("nuki-")))
        try:
            yield bench
        finally:
            await bench.peripheral.close()


__all__ = ["LOCK_VENDORS", "LockBench", "SimulatedDoor", "VirtualLockView", "lock_bench", "view_of"]
