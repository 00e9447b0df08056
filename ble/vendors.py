"""The lock vendors a door can name, and the factory that builds each one's driver.

A door's lock spec is ``VENDOR:ADDRESS`` (``nuki:AA:BB:CC:DD:EE:FF``,
``switchbot:AA:BB:CC:DD:EE:FF``) or a bare vendor name for a vendor without an address
(``sim``, the virtual Nuki lock on an in-process radio; ``sim-switchbot``, the virtual
SwitchBot Lock). :data:`VENDORS` maps the vendor name to a
:class:`Vendor`; its factory makes a :class:`LockVendor`, which opens one
:class:`ble.driver.LockDriver` per door from a :class:`DoorSite`: what the gateway lends a
vendor for that door (where its pairing is kept, a directory for its files, the name the lock
should list the gateway under). A :class:`VendorRegistry` builds each vendor once, on its
first door, and closes what the vendors share (a virtual radio) after the drivers.

This module imports no vendor: each factory imports its package when first used, so a
gateway with only real locks never loads the virtual lock's Bumble stack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ble.driver import LockDriver
from ble.errors import LockError

logger = logging.getLogger(__name__)


class UnknownLockVendor(LockError):
    """A lock spec names no vendor this gateway knows."""

    code = "lock_vendor_unknown"


@dataclass(frozen=True, slots=True)
class LockSpec:
    """A parsed lock spec: the vendor's name and, for a real lock, its BLE address."""

    vendor: str
    address: str | None = None

    def __str__(self) -> str:
        return self.vendor if self.address is None else f"{self.vendor}:{self.address}"


class PairingStore(Protocol):
    """Where the gateway keeps each door's pairing: vendor JSON, secret (it holds keys)."""

    async def load(self, door: str) -> Mapping[str, Any] | None:
        """The pairing stored for ``door``, or None."""
        ...

    async def offered(self, door: str) -> Mapping[str, Any] | None:
        """A pairing the owner left to be imported for ``door`` (``threshold lock pair
        --store``), or None. A vendor that accepts it saves it with :meth:`save`."""
        ...

    async def save(self, door: str, vendor: str, data: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class DoorSite:
    """What the gateway lends a vendor to open one door's lock."""

    door: str
    #: The door's place in the configuration; a virtual lock's address derives from it.
    position: int
    #: The name the lock lists the gateway under.
    client_name: str
    #: Where the vendor may keep the door's files (a virtual lock's state).
    directory: Path
    pairings: PairingStore
    #: One sentence telling the owner how to pair this door's lock, for a "not paired" error.
    how_to_pair: str


@dataclass(frozen=True, slots=True)
class OpenedLock:
    """A door's lock, open: its driver, a description for the log, the longest one driver
    call can take (a caller never waits less), and ``handle``, whatever else the vendor
    exposes for the door (the virtual lock, for tests), or None."""

    driver: LockDriver
    description: str
    operation_budget_s: float
    handle: object | None = None


class LockVendor(Protocol):
    """One vendor's factory of drivers, with what its doors share."""

    async def open(self, spec: LockSpec, site: DoorSite) -> OpenedLock: ...

    async def close(self) -> None:
        """Release what the vendor's doors share, after every driver is closed."""
        ...


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    takes_address: bool
    factory: Callable[[], LockVendor]
    #: Shown to an owner who mistyped a spec.
    example: str


def _virtual_nuki() -> LockVendor:
    from ble.sim.vendor import VirtualNukiVendor

    return VirtualNukiVendor()


def _virtual_switchbot() -> LockVendor:
    from ble.sim.switchbot_vendor import VirtualSwitchBotVendor

    return VirtualSwitchBotVendor()


def _switchbot() -> LockVendor:
    from ble.switchbot.vendor import SwitchBotVendor

    return SwitchBotVendor()


def _nuki() -> LockVendor:
    from ble.nuki.vendor import NukiVendor

    return NukiVendor()


VENDORS: Mapping[str, Vendor] = {
    "sim": Vendor("sim", False, _virtual_nuki, "sim"),
    "nuki": Vendor("nuki", True, _nuki, "nuki:ADDRESS"),
    "sim-switchbot": Vendor("sim-switchbot", False, _virtual_switchbot, "sim-switchbot"),
    "switchbot": Vendor("switchbot", True, _switchbot, "switchbot:ADDRESS"),
}


def spec_examples(vendors: Mapping[str, Vendor] = VENDORS) -> str:
    """``'sim' or 'nuki:ADDRESS'``: the specs an owner may write."""
    return " or ".join(f"'{vendor.example}'" for vendor in vendors.values())


class VendorRegistry:
    """The vendors of one set of doors: each built once, on its first door."""

    def __init__(self, vendors: Mapping[str, Vendor] = VENDORS) -> None:
        self._known = vendors
        self._open: dict[str, LockVendor] = {}

    async def open(self, spec: LockSpec, site: DoorSite) -> OpenedLock:
        known = self._known.get(spec.vendor)
        if known is None:
            raise UnknownLockVendor(
                f"door {site.door}: {str(spec)!r} is not a lock; use {spec_examples(self._known)}"
            )
        vendor = self._open.get(spec.vendor)
        if vendor is None:
            vendor = self._open[spec.vendor] = known.factory()
        return await vendor.open(spec, site)

    async def close(self) -> None:
        vendors, self._open = list(self._open.values()), {}
        for vendor in vendors:
            try:
                await vendor.close()
            except Exception:
                logger.exception("a lock vendor did not close cleanly")
