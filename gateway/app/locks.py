"""The gateway's locks: one :class:`ble.driver.LockDriver` per configured door.

Which driver a door gets is the vendor registry's business (:mod:`ble.vendors`): the door's
lock spec (``sim``, ``nuki:ADDRESS``, ``sim-switchbot``, ``switchbot:ADDRESS``) names the
vendor, whose factory builds the driver. This module lends each vendor what only the gateway
has: the store that keeps each door's pairing or key (and imports one the owner left in
``lock-<door>.json``: a Nuki pairing from ``threshold lock pair --store``, a SwitchBot
Lock's key id and encryption key), the configuration directory, and the name the lock lists
the gateway under.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ble.driver import LockDriver
from ble.errors import LockError
from ble.vendors import DoorSite, LockSpec, OpenedLock, VendorRegistry
from gateway.app.config import DoorConfig, GatewayConfig
from gateway.errors import GatewayError
from store.db import Store

if TYPE_CHECKING:
    from ble.sim.vendor import SimulatedDoor

log = logging.getLogger("threshold.locks")


class LockSetupError(GatewayError):
    code = "lock_unavailable"


@dataclass(slots=True)
class LockFleet:
    """Every door's open lock, and the vendors that built them."""

    doors: dict[str, OpenedLock] = field(default_factory=dict)
    vendors: VendorRegistry = field(default_factory=VendorRegistry)

    @property
    def drivers(self) -> dict[str, LockDriver]:
        return {name: door.driver for name, door in self.doors.items()}

    @property
    def simulated(self) -> dict[str, SimulatedDoor]:
        """The doors whose lock is the in-process virtual Nuki (tests reach the lock here)."""
        from ble.sim.vendor import SimulatedDoor  # Bumble only when asked for

        return {
            name: door.handle
            for name, door in self.doors.items()
            if isinstance(door.handle, SimulatedDoor)
        }

    @property
    def handles(self) -> dict[str, object]:
        """What each door's vendor exposes besides the driver (a virtual lock, for tests)."""
        return {name: door.handle for name, door in self.doors.items() if door.handle}

    def operation_budgets(self) -> list[float]:
        """Each driver's longest call. The gateway never waits less, so it never cuts a
        driver off before the driver can report what the lock did."""
        return [door.operation_budget_s for door in self.doors.values()]

    def describe(self) -> str:
        return (
            ", ".join(f"{name} ({door.description})" for name, door in self.doors.items()) or "none"
        )

    async def close(self) -> None:
        for door in self.doors.values():
            try:
                await door.driver.close()
            except Exception:
                log.exception("locks: a driver did not close cleanly")
        await self.vendors.close()


def pairing_file(config: GatewayConfig, door: str) -> Path:
    """Where ``threshold lock pair --store FILE`` may leave a real lock's pairing for a door."""
    return config.directory / f"lock-{door}.json"


@dataclass(frozen=True, slots=True)
class StorePairings:
    """The store as the vendors' :class:`ble.vendors.PairingStore`."""

    config: GatewayConfig
    store: Store

    async def load(self, door: str) -> Mapping[str, Any] | None:
        record = await self.store.lock_pairing(door)
        if record is None:
            return None
        data: Mapping[str, Any] = json.loads(record.data)
        return data

    async def offered(self, door: str) -> Mapping[str, Any] | None:
        path = pairing_file(self.config, door)
        if not path.exists():
            return None
        if path.stat().st_mode & 0o077:
            raise LockSetupError(f"{path}: holds the lock's shared key; run chmod 600 on it")
        try:
            data = json.loads(path.read_text())["lock"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LockSetupError(
                f"{path}: not a pairing written by threshold lock pair ({exc})"
            ) from None
        if not isinstance(data, dict):
            raise LockSetupError(f"{path}: not a pairing written by threshold lock pair")
        log.info("locks: a pairing for door %s is offered in %s", door, path)
        return data

    async def save(self, door: str, vendor: str, data: Mapping[str, Any]) -> None:
        await self.store.set_lock_pairing(door, vendor, json.dumps(data).encode())


def _site(config: GatewayConfig, pairings: StorePairings, door: DoorConfig, index: int) -> DoorSite:
    pair = (
        f"run 'threshold lock pair --name {door.name} --address {door.address} "
        f"--store {pairing_file(config, door.name)}'"
    )
    return DoorSite(
        door=door.name,
        position=index,
        client_name=f"threshold {config.gateway_id}",
        directory=config.directory,
        pairings=pairings,
        how_to_pair=pair,
    )


async def open_locks(config: GatewayConfig, store: Store) -> LockFleet:
    fleet = LockFleet()
    pairings = StorePairings(config, store)
    try:
        for index, door in enumerate(config.doors):
            spec = LockSpec(door.lock, door.address)
            fleet.doors[door.name] = await fleet.vendors.open(
                spec, _site(config, pairings, door, index)
            )
    except (LockError, OSError) as exc:
        await fleet.close()
        raise LockSetupError(f"cannot open the locks: {exc}") from None
    except BaseException:
        await fleet.close()
        raise
    return fleet
