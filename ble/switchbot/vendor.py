"""The SwitchBot Lock as a lock vendor (:mod:`ble.vendors`): ``switchbot:ADDRESS`` doors get
a :class:`ble.switchbot.driver.SwitchBotDriver` over the platform's bleak backend, with the
key id and encryption key the owner retrieved once from the SwitchBot account.

There is no pairing exchange: the owner leaves the key in ``lock-<door>.json`` (mode 0600,
checked at start by gateway/app/file_modes.py); it is checked against the door's address and
kept in the gateway's store (docs/locks.md, "SwitchBot Lock").
"""

from __future__ import annotations

import logging

from ble.errors import LockNotPaired, LockProtocolError
from ble.link import BleakTransport
from ble.switchbot.driver import SwitchBotCredentials, SwitchBotDriver, SwitchBotTimeouts
from ble.vendors import DoorSite, LockSpec, OpenedLock

logger = logging.getLogger(__name__)


class SwitchBotVendor:
    """Opens real SwitchBot Locks. Implements :class:`ble.vendors.LockVendor`."""

    def __init__(
        self, transport: BleakTransport | None = None, timeouts: SwitchBotTimeouts | None = None
    ) -> None:
        self.transport = transport or BleakTransport()
        self.timeouts = timeouts or SwitchBotTimeouts()

    async def open(self, spec: LockSpec, site: DoorSite) -> OpenedLock:
        address = (spec.address or "").upper()
        credentials = await self._credentials(address, site)
        return OpenedLock(
            driver=SwitchBotDriver(credentials, self.transport, self.timeouts, site.client_name),
            description=f"SwitchBot Lock {address}",
            operation_budget_s=self.timeouts.operation_budget_s(),
        )

    async def close(self) -> None:
        """Nothing is shared between real SwitchBot doors."""

    async def _credentials(self, address: str, site: DoorSite) -> SwitchBotCredentials:
        stored = await site.pairings.load(site.door)
        if stored is not None:
            return SwitchBotCredentials.from_json(stored)
        offered = await site.pairings.offered(site.door)
        if offered is None:
            raise LockNotPaired(
                f"door {site.door}: SwitchBot Lock {address} has no key; keep the key id and "
                "encryption key from the SwitchBot account with 'threshold lock switchbot-key "
                f"--address {address} --key-id XX --store lock-{site.door}.json' in the "
                "gateway's directory (docs/locks.md, 'Setting up a SwitchBot Lock')"
            )
        try:
            credentials = SwitchBotCredentials.from_json(offered)
        except LockProtocolError as exc:
            raise LockProtocolError(f"door {site.door}: {exc.message}") from None
        if credentials.address != address:
            raise LockProtocolError(
                f"door {site.door}: the key offered is for {credentials.address}, not {address}"
            )
        await site.pairings.save(site.door, "switchbot", credentials.to_json())
        logger.info("imported the SwitchBot key of door %s", site.door)
        return credentials
