"""The virtual Nuki against an independent Nuki client: pyNukiBT, the library behind Home
Assistant's Nuki Bluetooth integration (hass_nuki_bt), written against real locks, run
unchanged through this project's Bumble backend (issue 13).

What it needs from a lock is what real locks do: the name in the scan response (point 4),
pairing mode as service data (point 6), one indication per message after the MTU exchange
(point 1), a lock that answers a reconnect right after pairing (point 2), Request Config on
the first poll (point 3), the beacon's new-state bit (point 5).

The library's code is not changed. bleak picks its backend by platform (BlueZ on Linux) and
the library calls ``establish_connection(BleakClientWithServiceCache, device, name)`` with no
``backend=``; so, as an application embedding it on a Bumble host would, the test hands the
library (in the name it looks up in its own module) bleak-retry-connector's client class
with the Bumble backend bound. Nothing else of the library or of bleak is touched.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import nacl.bindings
import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak_retry_connector import BleakClientWithServiceCache

from ble.bumble_backend import BumbleClient, BumbleScanner
from ble.nuki.gatt import PAIRING_SERVICE
from ble.nuki.messages import NukiLockState
from tests.support.nuki import WAIT, NukiBench, nuki_bench

__all__ = ["nuki_bench"]

try:
    import pyNukiBT  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the hint is the point
    pyNukiBT = None

INSTALL_HINT = "pyNukiBT is missing: run ./scripts/setup.sh --test (pynukibt is a test extra)"


def _bumble_client_class(bench: NukiBench) -> type[BleakClientWithServiceCache]:
    adapter = bench.radio.adapter

    class BumbleClientWithServiceCache(BleakClientWithServiceCache):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("backend", BumbleClient)
            kwargs.setdefault("bumble_adapter", adapter)
            super().__init__(*args, **kwargs)

    return BumbleClientWithServiceCache


async def _until(predicate: Callable[[], bool], changed: asyncio.Event) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            changed.clear()
            await changed.wait()


async def test_pynukibt_pairs_polls_acts_and_sees_the_beacon(
    nuki_bench: NukiBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        pyNukiBT.nuki, "BleakClientWithServiceCache", _bumble_client_class(nuki_bench)
    )
    lock = nuki_bench.lock
    await nuki_bench.peripheral.press_button_for_pairing()

    # Discovery as Home Assistant does it: by the name, then pairing mode from service data.
    found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
    heard = asyncio.Event()

    watchers: list[Callable[[BLEDevice, AdvertisementData], None]] = []

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        found[device.address] = (device, adv)
        for watcher in watchers:
            watcher(device, adv)
        heard.set()

    scanner = BleakScanner(
        on_advertisement, backend=BumbleScanner, bumble_adapter=nuki_bench.radio.adapter
    )
    await scanner.start()
    try:
        address = nuki_bench.peripheral.address
        await _until(
            lambda: (
                address in found
                and found[address][1].local_name == lock.name
                and PAIRING_SERVICE in found[address][1].service_data
            ),
            heard,
        )
        device = found[address][0]

        private = os.urandom(32)
        nuki = pyNukiBT.NukiDevice(
            address,
            None,
            None,
            nacl.bindings.crypto_scalarmult_base(private),
            private,
            int.from_bytes(os.urandom(4), "little"),
            "Threshold peer",
            ble_device=device,
        )
        # Fail within the test's bounds instead of the library's 20 s and 10 retries.
        nuki.command_response_timeout = 3
        nuki.response_retry = 1
        nuki.send_retry = 2

        async with asyncio.timeout(4 * WAIT):
            # The library learns the model from the GATT services on connecting.
            await nuki.connect()
            paired = await nuki.pair()
            assert paired["auth_id"] is not None
            assert len(lock.authorizations) == 1
            # The library disconnected after pairing; its first poll reconnects at once,
            # without a scan, and asks for the states, then the config.
            await nuki.update_state()
            assert nuki.last_state["lock_state"] == NukiLockState.LOCKED.name
            assert nuki.config["nuki_id"] == lock.nuki_id
            assert nuki.config["name"] == lock.name
            assert list(nuki.config["firmware_version"]) == list(lock.firmware)

            moved = asyncio.Event()
            lock.on_state_change(moved.set)
            await nuki.unlock()
            await _until(lambda: lock.lock_state is NukiLockState.UNLOCKED, moved)
            await nuki.update_state()
            assert nuki.last_state["lock_state"] == NukiLockState.UNLOCKED.name
            await nuki.disconnect()

            # Changes nobody asked for: the library watches the beacon's lowest bit.
            watchers.append(
                lambda d, adv: (
                    nuki.parse_advertisement_data(d, adv) if d.address == address else None
                )
            )
            await _until(lambda: not nuki.poll_needed(), heard)
            lock.open_door()
            await _until(nuki.poll_needed, heard)
            await nuki.update_state()
            assert nuki.last_state["door_sensor_state"] == "DOOR_OPENED"
            await nuki.disconnect()
    finally:
        await scanner.stop()
