"""Fixtures for SwitchBot Lock tests over real bleak on the Bumble backend: a virtual radio
with the virtual SwitchBot Lock on it, the bleak transport that reaches it, and a driver
holding the lock's key.

Every wait has a timeout (:data:`tests.support.nuki.WAIT`); nothing sleeps to synchronise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from ble.bumble_backend import VirtualRadio
from ble.link import BleakTransport
from ble.sim.switchbot_lock import VirtualSwitchBotLock
from ble.sim.switchbot_peripheral import VirtualSwitchBotPeripheral
from ble.switchbot.advertisement import mac_bytes
from ble.switchbot.driver import SwitchBotCredentials, SwitchBotDriver, SwitchBotTimeouts
from ble.switchbot.models import SwitchBotModel
from tests.support.nuki import bumble_transport

SWITCHBOT_ADDRESS = "C0:4E:5B:00:00:01"
SWITCHBOT_TIMEOUTS = SwitchBotTimeouts(
    scan_s=5.0, connect_s=10.0, step_s=3.0, motor_s=5.0, idle_disconnect_s=2.0
)


@dataclass
class SwitchBotBench:
    radio: VirtualRadio
    peripheral: VirtualSwitchBotPeripheral
    lock: VirtualSwitchBotLock
    transport: BleakTransport

    def credentials(self) -> SwitchBotCredentials:
        """What the owner retrieves once from the SwitchBot account for this lock."""
        key_id = self.lock.key_id
        return SwitchBotCredentials(
            self.peripheral.address, key_id, self.lock.keys[key_id], self.lock.model
        )

    def driver(self, timeouts: SwitchBotTimeouts = SWITCHBOT_TIMEOUTS) -> SwitchBotDriver:
        return SwitchBotDriver(self.credentials(), self.transport, timeouts)


async def open_switchbot_bench(
    radio: VirtualRadio, model: SwitchBotModel = SwitchBotModel.LOCK
) -> SwitchBotBench:
    lock = VirtualSwitchBotLock(mac_bytes(SWITCHBOT_ADDRESS), model=model, motor_seconds=0.05)
    peripheral = await VirtualSwitchBotPeripheral.join(radio, lock, SWITCHBOT_ADDRESS)
    return SwitchBotBench(radio, peripheral, lock, bumble_transport(radio))


@pytest.fixture(params=list(SwitchBotModel), ids=lambda model: f"switchbot-{model.value}")
async def switchbot_bench(request: pytest.FixtureRequest) -> AsyncIterator[SwitchBotBench]:
    """The virtual SwitchBot Lock on a virtual radio; every test using it runs once per model
    (the original Lock, the Lock Pro), which differ in layouts and command bytes."""
    async with VirtualRadio() as radio:
        bench = await open_switchbot_bench(radio, request.param)
        try:
            yield bench
        finally:
            await bench.peripheral.close()
