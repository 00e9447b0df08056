"""The virtual Nuki as a lock vendor (:mod:`ble.vendors`): a ``sim`` door's lock runs *in
this process*.

Each ``sim`` door gets a virtual Nuki (:class:`ble.sim.lock.VirtualNukiLock`) as a Bumble GATT
peripheral on an in-process ``LocalLink`` radio shared by the vendor's doors, reached through
real bleak (the Bumble backend), real bleak-retry-connector and the real Nuki driver, so the
gateway's code path is the one a real lock sees. The lock's physical state (bolt, door,
authorizations) is saved to ``sim-lock-<door>.json`` in the door's directory on every change,
because a real lock keeps its state when the gateway crashes; that is what makes the SIGKILL
reconciliation test honest. On first start the vendor pairs with the virtual lock (pairing
mode on, as a user holding the button would) and saves the pairing, like any other lock's.
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
from ble.nuki.driver import NukiDriver, NukiPairing, NukiTimeouts, pair_nuki
from ble.sim.lock import VirtualNukiLock
from ble.sim.peripheral import VirtualNukiPeripheral
from ble.sim.session import save_lock_state
from ble.vendors import DoorSite, LockSpec, OpenedLock

logger = logging.getLogger(__name__)

SIM_ADDRESS_PREFIX = "C0:4E:01:5A:00:"
SIM_MOTOR_S = 0.05
SIM_TIMEOUTS = NukiTimeouts(scan_s=5.0, connect_s=8.0, step_s=3.0, motor_s=5.0)


@dataclass(slots=True)
class SimulatedDoor:
    """A door whose lock is the in-process virtual Nuki (tests reach the lock through it)."""

    name: str
    lock: VirtualNukiLock
    peripheral: VirtualNukiPeripheral
    state_file: Path


def sim_state_file(directory: Path, door: str) -> Path:
    return directory / f"sim-lock-{door}.json"


@dataclass(slots=True)
class VirtualNukiVendor:
    """Opens virtual Nuki locks on one shared radio. Implements
    :class:`ble.vendors.LockVendor`."""

    radio: VirtualRadio | None = None
    doors: dict[str, SimulatedDoor] = field(default_factory=dict)

    async def open(self, spec: LockSpec, site: DoorSite) -> OpenedLock:
        if self.radio is None:
            self.radio = VirtualRadio()
            await self.radio.start()
        driver, door = await self._open(site, self.radio)
        self.doors[site.door] = door
        return OpenedLock(
            driver=driver,
            description="virtual Nuki over bleak/Bumble",
            operation_budget_s=SIM_TIMEOUTS.operation_budget_s(),
            handle=door,
        )

    async def close(self) -> None:
        for door in self.doors.values():
            with contextlib.suppress(Exception):
                await door.peripheral.close()
            save_lock_state(door.state_file, door.lock)
        self.doors.clear()
        radio, self.radio = self.radio, None
        if radio is not None:
            with contextlib.suppress(Exception):
                await radio.close()

    async def _open(self, site: DoorSite, radio: VirtualRadio) -> tuple[NukiDriver, SimulatedDoor]:
        state_file = sim_state_file(site.directory, site.door)
        if state_file.exists():
            data: dict[str, Any] = json.loads(state_file.read_text())
            lock = VirtualNukiLock.from_dict(data, motor_seconds=SIM_MOTOR_S)
        else:
            # Named after its Nuki ID, as a real one is (Nuki_5A000001, ...).
            lock = VirtualNukiLock(nuki_id=0x5A000001 + site.position, motor_seconds=SIM_MOTOR_S)
        lock.on_state_change(lambda: save_lock_state(state_file, lock))
        save_lock_state(state_file, lock)
        address = f"{SIM_ADDRESS_PREFIX}{site.position + 1:02X}"
        peripheral = await VirtualNukiPeripheral.join(radio, lock, address)
        transport = BleakTransport(
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
            options={"bumble_adapter": radio.adapter},
        )
        stored = await site.pairings.load(site.door)
        pairing = NukiPairing.from_json(stored) if stored is not None else None
        if pairing is None or pairing.auth_id not in lock.authorizations:
            await peripheral.press_button_for_pairing()
            pairing = await pair_nuki(
                address, site.client_name, transport=transport, timeouts=SIM_TIMEOUTS
            )
            await site.pairings.save(site.door, "nuki", pairing.to_json())
            logger.info("paired with the virtual lock of door %s", site.door)
        driver = NukiDriver(pairing, transport, SIM_TIMEOUTS)
        return driver, SimulatedDoor(site.door, lock, peripheral, state_file)
