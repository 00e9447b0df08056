"""The Nuki as a lock vendor (:mod:`ble.vendors`): ``nuki:ADDRESS`` doors get a
:class:`ble.nuki.driver.NukiDriver` over the platform's bleak backend, with the pairing the
gateway keeps for the door.

A pairing is made once, by ``threshold lock pair`` (Nuki BLE API §10 "Authorize app"); the
gateway then keeps it in its store. A pairing the owner left for import is checked against
the door's address before it is saved.
"""

from __future__ import annotations

import logging

from ble.errors import LockNotPaired, LockProtocolError
from ble.link import BleakTransport
from ble.nuki.driver import NukiDriver, NukiPairing, NukiTimeouts
from ble.vendors import DoorSite, LockSpec, OpenedLock

logger = logging.getLogger(__name__)


class NukiVendor:
    """Opens real Nuki locks. Implements :class:`ble.vendors.LockVendor`."""

    def __init__(
        self, transport: BleakTransport | None = None, timeouts: NukiTimeouts | None = None
    ) -> None:
        self.transport = transport or BleakTransport()
        self.timeouts = timeouts or NukiTimeouts()

    async def open(self, spec: LockSpec, site: DoorSite) -> OpenedLock:
        address = (spec.address or "").upper()
        pairing = await self._pairing(address, site)
        return OpenedLock(
            driver=NukiDriver(pairing, self.transport, self.timeouts),
            description=f"Nuki {address}",
            operation_budget_s=self.timeouts.operation_budget_s(),
        )

    async def close(self) -> None:
        """Nothing is shared between real Nuki doors."""

    async def _pairing(self, address: str, site: DoorSite) -> NukiPairing:
        stored = await site.pairings.load(site.door)
        if stored is not None:
            return NukiPairing.from_json(stored)
        offered = await site.pairings.offered(site.door)
        if offered is None:
            raise LockNotPaired(
                f"door {site.door}: Nuki {address} is not paired; {site.how_to_pair}"
            )
        try:
            pairing = NukiPairing.from_json(offered)
        except LockProtocolError as exc:
            raise LockProtocolError(
                f"door {site.door}: the pairing offered for import is not one written by "
                f"threshold lock pair ({exc.message})"
            ) from None
        if pairing.address.upper() != address:
            raise LockProtocolError(
                f"door {site.door}: the pairing offered for import is for {pairing.address}, "
                f"not {address}"
            )
        await site.pairings.save(site.door, "nuki", pairing.to_json())
        logger.info("imported the pairing of door %s", site.door)
        return pairing
