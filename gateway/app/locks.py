"""The gateway's locks: one :class:`ble.driver.LockDriver` per configured door.

``nuki:ADDRESS`` doors are driven by :class:`ble.nuki.driver.NukiDriver` over the platform's
bleak backend, with the pairing the store holds for the door.

``sim`` doors run the virtual Nuki lock *in this process*: a Bumble GATT peripheral on an
in-process ``LocalLink`` radio, reached through real bleak (the Bumble backend), real
bleak-retry-connector and the real Nuki driver, so the gateway's code path is the one a real
lock sees. The virtual lock's physical state (bolt, door, authorizations) is saved to
``sim-lock-<door>.json`` beside threshold.toml on every change, because a real lock keeps its
state when the gateway crashes; that is what makes the SIGKILL reconciliation test honest.
On first start the gateway pairs with the virtual lock (pairing mode on, as a user holding
the button would) and stores the pairing, like any other lock's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ble.bumble_backend import BumbleClient, BumbleScanner, VirtualRadio
from ble.driver import LockDriver
from ble.errors import LockError
from ble.link import BleakTransport
from ble.nuki.driver import NukiDriver, NukiPairing, NukiTimeouts, pair_nuki
from ble.sim.lock import VirtualNukiLock
from ble.sim.peripheral import VirtualNukiPeripheral
from gateway.app.config import DoorConfig, GatewayConfig
from gateway.errors import GatewayError
from store.db import Store

log = logging.getLogger("threshold.locks")

SIM_ADDRESS_PREFIX = "C0:4E:01:5A:00:"
SIM_MOTOR_S = 0.05
SIM_TIMEOUTS = NukiTimeouts(scan_s=5.0, connect_s=8.0, step_s=3.0, motor_s=5.0)


class LockSetupError(GatewayError):
    code = "lock_unavailable"


@dataclass(slots=True)
class SimulatedDoor:
    """A door whose lock is the in-process virtual Nuki (tests reach the lock through it)."""

    name: str
    lock: VirtualNukiLock
    peripheral: VirtualNukiPeripheral
    state_file: Path


@dataclass(slots=True)
class LockFleet:
    drivers: dict[str, LockDriver] = field(default_factory=dict)
    simulated: dict[str, SimulatedDoor] = field(default_factory=dict)
    radio: VirtualRadio | None = None
    kinds: dict[str, str] = field(default_factory=dict)

    def operation_budgets(self) -> list[float]:
        """Each driver's longest call. The gateway never waits less, so it never cuts a
        driver off before the driver can report what the lock did."""
        return [
            d.timeouts.operation_budget_s()
            for d in self.drivers.values()
            if isinstance(d, NukiDriver)
        ]

    def describe(self) -> str:
        return ", ".join(f"{name} ({kind})" for name, kind in self.kinds.items()) or "none"

    async def close(self) -> None:
        for driver in self.drivers.values():
            with contextlib.suppress(Exception):
                await driver.close()
        for sim in self.simulated.values():
            with contextlib.suppress(Exception):
                await sim.peripheral.close()
            _save_sim_state(sim.state_file, sim.lock)
        if self.radio is not None:
            with contextlib.suppress(Exception):
                await self.radio.close()


def _save_sim_state(path: Path, lock: VirtualNukiLock) -> None:
    # Written whole then renamed: a SIGKILL leaves either the old or the new state.
    tmp = path.with_suffix(".tmp")
    data = json.dumps(lock.to_dict()).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def sim_state_file(config: GatewayConfig, door: str) -> Path:
    return config.directory / f"sim-lock-{door}.json"


async def _open_sim(
    config: GatewayConfig, door: DoorConfig, index: int, radio: VirtualRadio, store: Store
) -> tuple[NukiDriver, SimulatedDoor]:
    state_file = sim_state_file(config, door.name)
    if state_file.exists():
        data: dict[str, Any] = json.loads(state_file.read_text())
        lock = VirtualNukiLock.from_dict(data, motor_seconds=SIM_MOTOR_S)
    else:
        lock = VirtualNukiLock(name=f"Nuki_SIM{index:05d}", motor_seconds=SIM_MOTOR_S)
    lock.on_state_change(lambda: _save_sim_state(state_file, lock))
    _save_sim_state(state_file, lock)
    address = f"{SIM_ADDRESS_PREFIX}{index + 1:02X}"
    peripheral = await VirtualNukiPeripheral.join(radio, lock, address)
    transport = BleakTransport(
        scanner_backend=BumbleScanner,
        client_backend=BumbleClient,
        options={"bumble_adapter": radio.adapter},
    )
    pairing = await _stored_pairing(store, door.name)
    if pairing is None or pairing.auth_id not in lock.authorizations:
        await peripheral.press_button_for_pairing()
        pairing = await pair_nuki(
            address, f"threshold {config.gateway_id}", transport=transport, timeouts=SIM_TIMEOUTS
        )
        await store.set_lock_pairing(door.name, "nuki", json.dumps(pairing.to_json()).encode())
        log.info("locks: paired with the virtual lock of door %s", door.name)
    driver = NukiDriver(pairing, transport, SIM_TIMEOUTS)
    return driver, SimulatedDoor(door.name, lock, peripheral, state_file)


async def _stored_pairing(store: Store, door: str) -> NukiPairing | None:
    record = await store.lock_pairing(door)
    if record is None:
        return None
    return NukiPairing.from_json(json.loads(record.data))


def pairing_file(config: GatewayConfig, door: str) -> Path:
    """Where ``threshold lock pair --store FILE`` may leave a real lock's pairing for a door."""
    return config.directory / f"lock-{door}.json"


async def _import_pairing(config: GatewayConfig, store: Store, door: DoorConfig) -> NukiPairing:
    """A real Nuki's pairing: from the store, or imported once from ``lock-<door>.json``
    (written by ``threshold lock pair``), after which the store holds it."""
    pairing = await _stored_pairing(store, door.name)
    if pairing is not None:
        return pairing
    path = pairing_file(config, door.name)
    if not path.exists():
        raise LockSetupError(
            f"door {door.name}: Nuki {door.address} is not paired; run "
            f"'threshold lock pair --name {door.name} --address {door.address} --store {path}'"
        )
    if path.stat().st_mode & 0o077:
        raise LockSetupError(f"{path}: holds the lock's shared key; run chmod 600 on it")
    try:
        pairing = NukiPairing.from_json(json.loads(path.read_text())["lock"])
    except (OSError, ValueError, KeyError, TypeError, LockError) as exc:
        raise LockSetupError(
            f"{path}: not a pairing written by threshold lock pair ({exc})"
        ) from None
    if pairing.address.upper() != (door.address or "").upper():
        raise LockSetupError(
            f"{path}: the pairing is for {pairing.address}, not {door.address} (door {door.name})"
        )
    await store.set_lock_pairing(door.name, "nuki", json.dumps(pairing.to_json()).encode())
    log.info("locks: imported the pairing of door %s from %s", door.name, path)
    return pairing


async def open_locks(config: GatewayConfig, store: Store) -> LockFleet:
    fleet = LockFleet()
    try:
        for index, door in enumerate(config.doors):
            if door.lock == "sim":
                if fleet.radio is None:
                    fleet.radio = VirtualRadio()
                    await fleet.radio.start()
                driver, sim = await _open_sim(config, door, index, fleet.radio, store)
                fleet.drivers[door.name] = driver
                fleet.simulated[door.name] = sim
                fleet.kinds[door.name] = "virtual Nuki over bleak/Bumble"
            else:
                pairing = await _import_pairing(config, store, door)
                fleet.drivers[door.name] = NukiDriver(pairing)
                fleet.kinds[door.name] = f"Nuki {door.address}"
    except (LockError, OSError) as exc:
        await fleet.close()
        raise LockSetupError(f"cannot open the locks: {exc}") from None
    except BaseException:
        await fleet.close()
        raise
    return fleet
