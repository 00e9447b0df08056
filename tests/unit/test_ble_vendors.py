"""The vendor registry (ble/vendors.py): a lock spec's vendor picks the factory, each vendor
is built once for all its doors and closed after them, and an unknown vendor is a typed
error. The config parser accepts exactly the registry's specs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ble.driver import DoorState, LockDriver, LockState, LockStatus, StatusCallback
from ble.vendors import (
    VENDORS,
    DoorSite,
    LockSpec,
    OpenedLock,
    UnknownLockVendor,
    Vendor,
    VendorRegistry,
)
from gateway.app.config import parse_lock_spec
from gateway.errors import ConfigError

STATUS = LockStatus(
    LockState.LOCKED, DoorState.CLOSED, 100, False, datetime(2025, 1, 1, tzinfo=UTC)
)


class StillLock:
    """A driver that never moves: enough to see which factory built it."""

    def __init__(self, address: str | None) -> None:
        self.address = address

    async def status(self) -> LockStatus:
        return STATUS

    async def unlock(self) -> LockStatus:
        return STATUS

    async def lock(self) -> LockStatus:
        return STATUS

    async def unlatch(self) -> LockStatus:
        return STATUS

    def subscribe(self, callback: StatusCallback) -> Any:
        return lambda: None

    async def close(self) -> None:
        pass


class NoPairings:
    async def load(self, door: str) -> Mapping[str, Any] | None:
        return None

    async def offered(self, door: str) -> Mapping[str, Any] | None:
        return None

    async def save(self, door: str, vendor: str, data: Mapping[str, Any]) -> None:
        raise AssertionError("nothing to save")


class StillVendor:
    built: ClassVar[list[StillVendor]] = []

    def __init__(self) -> None:
        StillVendor.built.append(self)
        self.closed = False
        self.doors: list[str] = []

    async def open(self, spec: LockSpec, site: DoorSite) -> OpenedLock:
        self.doors.append(site.door)
        return OpenedLock(StillLock(spec.address), f"still {spec.address}", 1.0)

    async def close(self) -> None:
        self.closed = True


def site(door: str) -> DoorSite:
    return DoorSite(door, 0, "threshold test", Path("."), NoPairings(), "pair it")


async def test_a_vendor_is_built_once_for_its_doors_and_closed_after_them() -> None:
    vendors: dict[str, Vendor] = {"still": Vendor("still", True, StillVendor, "still:ADDRESS")}
    registry = VendorRegistry(vendors)
    StillVendor.built.clear()
    front = await registry.open(LockSpec("still", "AA:BB:CC:DD:EE:01"), site("front"))
    back = await registry.open(LockSpec("still", "AA:BB:CC:DD:EE:02"), site("back"))
    assert isinstance(front.driver, LockDriver)
    assert isinstance(front.driver, StillLock)
    assert isinstance(back.driver, StillLock)
    assert (front.driver.address, back.driver.address) == ("AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02")
    [vendor] = StillVendor.built
    assert vendor.doors == ["front", "back"]
    assert not vendor.closed
    await registry.close()
    assert vendor.closed


async def test_an_unknown_vendor_is_a_typed_error() -> None:
    with pytest.raises(UnknownLockVendor) as info:
        await VendorRegistry().open(LockSpec("yale", "AA:BB:CC:DD:EE:01"), site("front"))
    assert info.value.code == "lock_vendor_unknown"
    assert "'sim' or 'nuki:ADDRESS' or 'sim-switchbot' or 'switchbot:ADDRESS'" in (
        info.value.message
    )


def test_the_config_accepts_the_registry_specs_and_nothing_else() -> None:
    assert set(VENDORS) == {"sim", "nuki", "sim-switchbot", "switchbot"}
    assert parse_lock_spec("sim", "front").lock == "sim"
    assert parse_lock_spec("sim-switchbot", "front").lock == "sim-switchbot"
    door = parse_lock_spec("nuki:aa:bb:cc:dd:ee:01", "front")
    assert (door.lock, door.address) == ("nuki", "AA:BB:CC:DD:EE:01")
    door = parse_lock_spec("switchbot:aa:bb:cc:dd:ee:02", "front")
    assert (door.lock, door.address) == ("switchbot", "AA:BB:CC:DD:EE:02")
    for bad in (
        "yale:AA:BB:CC:DD:EE:01",
        "nuki",
        "switchbot",
        "sim:AA:BB:CC:DD:EE:01",
        "sim-switchbot:AA:BB:CC:DD:EE:01",
        "nuki:nope",
        "switchbot:nope",
    ):
        with pytest.raises(ConfigError):
            parse_lock_spec(bad, "front")
