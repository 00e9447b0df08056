"""The virtual SwitchBot Lock as a lock vendor (:mod:`ble.vendors`): a ``sim-switchbot``
door's lock runs *in this process*, as a ``sim`` door's virtual Nuki does
(:mod:`ble.sim.vendor`).

Each door gets a :class:`ble.sim.switchbot_lock.VirtualSwitchBotLock` as a Bumble GATT
peripheral on an in-process radio shared by the vendor's doors, reached through real bleak
(the Bumble backend), real bleak-retry-connector and the real SwitchBot driver. The lock's
state and keys are saved to ``sim-lock-<door>.json`` (mode 0600, checked at start) on every
change, because a real lock keeps its state when the gateway crashes. On first start the
lock's key id and encryption key are saved as the door's key, as an owner would leave a real
lock's.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ble.bumble_backend import BumbleClient, BumbleScanner, VirtualRadio
from ble.link import BleakTransport
from ble.sim.switchbot_lock import VirtualSwitchBotLock
from ble.sim.switchbot_peripheral import VirtualSwitchBotPeripheral
from ble.sim.vendor import sim_state_file
from ble.switchbot.advertisement import mac_bytes
from ble.switchbot.driver import SwitchBotCredentials, SwitchBotDriver, SwitchBotTimeouts
from ble.vendors import DoorSite, LockSpec, OpenedLock
from groundwork.files import write_file

logger = logging.getLogger(__name__)

SIM_ADDRESS_PREFIX = "C0:4E:5B:00:00:"
SIM_MOTOR_S = 0.05
SIM_TIMEOUTS = SwitchBotTimeouts(scan_s=5.0, connect_s=8.0, step_s=3.0, motor_s=5.0)


@dataclass(slots=True)
class SimulatedSwitchBotDoor:
    """A door whose lock is the in-process virtual SwitchBot Lock."""

    name: str
    lock: VirtualSwitchBotLock
    peripheral: VirtualSwitchBotPeripheral
    state_file: Path


def save_switchbot_state(path: Path, lock: VirtualSwitchBotLock) -> None:
    """Keep the lock's state and keys (mode 0600), replaced whole, so that a SIGKILL leaves
    the old state or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, json.dumps(lock.to_dict(), indent=1).encode(), replace=True)


@dataclass(slots=True)
class VirtualSwitchBotVendor:
    """Opens virtual SwitchBot Locks on one shared radio. Implements
    :class:`ble.vendors.LockVendor`."""

    radio: VirtualRadio | None = None
    doors: dict[str, SimulatedSwitchBotDoor] = field(default_factory=dict)

    async def open(self, spec: LockSpec, site: DoorSite) -> OpenedLock:
        if self.radio is None:
            self.radio = VirtualRadio()
            await self.radio.start()
        driver, door = await self._open(site, self.radio)
        self.doors[site.door] = door
        return OpenedLock(
            driver=driver,
            description="virtual SwitchBot Lock over bleak/Bumble",
            operation_budget_s=SIM_TIMEOUTS.operation_budget_s(),
            handle=door,
        )

    async def close(self) -> None:
        for door in self.doors.values():
            with contextlib.suppress(Exception):
                await door.peripheral.close()
            save_switchbot_state(door.state_file, door.lock)
        self.doors.clear()
        radio, self.radio = self.radio, None
        if radio is not None:
            with contextlib.suppress(Exception):
                await radio.close()

    async def _open(
        self, site: DoorSite, radio: VirtualRadio
    ) -> tuple[SwitchBotDriver, SimulatedSwitchBotDoor]:
        state_file = sim_state_file(site.directory, site.door)
        address = f"{SIM_ADDRESS_PREFIX}{site.position + 1:02X}"
        if state_file.exists():
            data: dict[str, Any] = json.loads(state_file.read_text())
            lock = VirtualSwitchBotLock.from_dict(data, motor_seconds=SIM_MOTOR_S)
        else:
            lock = VirtualSwitchBotLock(mac_bytes(address), motor_seconds=SIM_MOTOR_S)
        lock.on_state_change(lambda: save_switchbot_state(state_file, lock))
        save_switchbot_state(state_file, lock)
        peripheral = await VirtualSwitchBotPeripheral.join(radio, lock, address)
        transport = BleakTransport(
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
            options={"bumble_adapter": radio.adapter},
        )
        stored = await site.pairings.load(site.door)
        credentials = SwitchBotCredentials.from_json(stored) if stored is not None else None
        if credentials is None or credentials.key_id not in lock.keys:
            key_id = lock.key_id
            credentials = SwitchBotCredentials(address, key_id, lock.keys[key_id])
            await site.pairings.save(site.door, "switchbot", credentials.to_json())
            logger.info("took the key of the virtual SwitchBot Lock of door %s", site.door)
        driver = SwitchBotDriver(credentials, transport, SIM_TIMEOUTS, site.client_name)
        door = SimulatedSwitchBotDoor(site.door, lock, peripheral, state_file)
        return driver, door
