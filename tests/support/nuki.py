"""Fixtures for Nuki tests over real bleak on the Bumble backend: a virtual radio with the
virtual Nuki lock on it, the bleak transport that reaches it, and a paired driver.

Every wait has a timeout (:data:`WAIT`); nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from bleak import BleakClient

from ble.bumble_backend import BumbleClient, BumbleScanner, VirtualRadio
from ble.driver import LockStatus
from ble.link import BleakTransport
from ble.nuki import gatt
from ble.nuki.driver import NukiDriver, NukiPairing, NukiTimeouts, pair_nuki
from ble.nuki.frames import ADATA_BYTES, encode_encrypted, encrypted_frame_length
from ble.nuki.models import NukiModel
from ble.nuki.reassembly import is_plain_error_report
from ble.sim.lock import VirtualNukiLock
from ble.sim.peripheral import VirtualNukiPeripheral

WAIT = 10.0
LOCK_ADDRESS = "C0:4E:01:5A:00:01"
# Short but generous enough for a loaded 2-core machine.
TEST_TIMEOUTS = NukiTimeouts(
    scan_s=5.0, connect_s=10.0, step_s=3.0, motor_s=5.0, idle_disconnect_s=2.0
)


@dataclass
class NukiBench:
    radio: VirtualRadio
    peripheral: VirtualNukiPeripheral
    lock: VirtualNukiLock
    transport: BleakTransport

    async def pair(self, name: str = "Threshold test") -> NukiPairing:
        await self.peripheral.press_button_for_pairing()
        return await pair_nuki(
            self.peripheral.address, name, transport=self.transport, timeouts=TEST_TIMEOUTS
        )

    def driver(self, pairing: NukiPairing, timeouts: NukiTimeouts = TEST_TIMEOUTS) -> NukiDriver:
        return NukiDriver(pairing, self.transport, timeouts)


def bumble_transport(radio: VirtualRadio) -> BleakTransport:
    return BleakTransport(
        scanner_backend=BumbleScanner,
        client_backend=BumbleClient,
        options={"bumble_adapter": radio.adapter},
    )


@pytest.fixture(params=list(NukiModel), ids=lambda model: f"smart-lock-{model.value}")
async def nuki_bench(request: pytest.FixtureRequest) -> AsyncIterator[NukiBench]:
    """The virtual Nuki on a virtual radio; every test using it runs once per model (2.0,
    3.0, 4.0), which differ in what they advertise (ble.nuki.models)."""
    async with VirtualRadio() as radio:
        lock = VirtualNukiLock(motor_seconds=0.05, model=request.param)
        peripheral = await VirtualNukiPeripheral.join(radio, lock, LOCK_ADDRESS)
        try:
            yield NukiBench(radio, peripheral, lock, bumble_transport(radio))
        finally:
            await peripheral.close()


class StatusRecorder:
    """A subscriber that lets a test wait for a status matching a predicate."""

    def __init__(self) -> None:
        self.seen: list[LockStatus] = []
        self._changed = asyncio.Event()

    def __call__(self, status: LockStatus) -> None:
        self.seen.append(status)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[LockStatus], bool]) -> LockStatus:
        async with asyncio.timeout(WAIT):
            while True:
                for status in self.seen:
                    if predicate(status):
                        return status
                self._changed.clear()
                await self._changed.wait()


class RawNukiClient:
    """A bare bleak client on the keyturner's USDIO characteristic, as another Nuki client
    would use it: it writes encrypted frames and keeps every indication as it arrived, so a
    test sees how the lock cut its replies."""

    def __init__(self, client: BleakClient, pairing: NukiPairing) -> None:
        self.client = client
        self.pairing = pairing
        self.indications: asyncio.Queue[bytes] = asyncio.Queue()

    @classmethod
    async def connect(cls, radio: VirtualRadio, pairing: NukiPairing) -> RawNukiClient:
        """Connect by address, without scanning first, and subscribe."""
        client = BleakClient(
            pairing.address, backend=BumbleClient, bumble_adapter=radio.adapter, timeout=WAIT
        )
        await client.connect()
        raw = cls(client, pairing)
        await client.start_notify(
            gatt.KEYTURNER_USDIO, lambda _c, data: raw.indications.put_nowait(bytes(data))
        )
        return raw

    async def request(self, command: int, payload: bytes) -> list[bytes]:
        """Send one encrypted command; return the indications of the first reply."""
        frame = encode_encrypted(
            self.pairing.shared_key, self.pairing.auth_id, command, payload, os.urandom(24)
        )
        await self.client.write_gatt_char(gatt.KEYTURNER_USDIO, frame, response=True)
        return await self.next_reply()

    async def next_reply(self) -> list[bytes]:
        pieces: list[bytes] = []
        async with asyncio.timeout(WAIT):
            while True:
                pieces.append(await self.indications.get())
                whole = b"".join(pieces)
                if is_plain_error_report(whole):
                    return pieces
                if len(whole) >= ADATA_BYTES and len(whole) >= encrypted_frame_length(
                    whole[:ADATA_BYTES]
                ):
                    return pieces

    async def close(self) -> None:
        await self.client.disconnect()
