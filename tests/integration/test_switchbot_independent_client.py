"""pySwitchbot (the library behind Home Assistant's SwitchBot integration, written against
real locks) run unchanged against the virtual SwitchBot Lock, once per model, through the
project's Bumble backend: the virtual lock must behave like the real ones, not like our
reading of the documentation. The library discovers the lock from its advertisement,
negotiates the IV, enables notifications, unlocks and locks (its commands and its own
result checks), hears the bolt come to rest through the lock's notification, and reads the
lock info and basic info.

bleak picks BlueZ on Linux and the library passes no ``backend=``, so the test hands it
bleak-retry-connector's client class with the Bumble backend bound, in the name the library
looks up, for the test's duration only; its code is untouched (docs/locks.md says why the
product driver cannot do the same).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak_retry_connector import BleakClientWithServiceCache

from ble.bumble_backend import BumbleClient
from ble.switchbot.messages import Command, Position, SwitchBotAction
from ble.switchbot.models import SwitchBotModel
from tests.support.nuki import WAIT
from tests.support.switchbot import SwitchBotBench, switchbot_bench

__all__ = ["switchbot_bench"]

try:
    import switchbot
    import switchbot.devices.device as switchbot_device
except ImportError:  # the hint is the point
    switchbot = None
    switchbot_device = None

INSTALL_HINT = "pySwitchbot is missing: run ./scripts/setup.sh --test (PySwitchbot is a test extra)"


def _bumble_client_class(bench: SwitchBotBench) -> type[BleakClientWithServiceCache]:
    adapter = bench.radio.adapter

    class BumbleClientWithServiceCache(BleakClientWithServiceCache):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("backend", BumbleClient)
            kwargs.setdefault("bumble_adapter", adapter)
            super().__init__(*args, **kwargs)

    return BumbleClientWithServiceCache


async def _advertisement(bench: SwitchBotBench) -> Any:
    """The lock's current advertisement, heard through bleak, parsed by the library."""
    assert switchbot is not None
    address = bench.peripheral.address
    sequence = bench.lock.sequence
    parsed: list[Any] = []
    current = asyncio.Event()

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        if device.address.upper() != address:
            return
        heard = switchbot.parse_advertisement_data(device, adv)
        if heard is not None and heard.data.get("data", {}).get("sequence_number") == sequence:
            parsed.append(heard)
            current.set()

    scanner = BleakScanner(on_advertisement, **bench.transport.scanner_kwargs())
    await scanner.start()
    try:
        async with asyncio.timeout(WAIT):
            await current.wait()
    finally:
        await scanner.stop()
    return parsed[-1]


async def test_pyswitchbot_unlocks_locks_and_reads_the_virtual_lock(
    switchbot_bench: SwitchBotBench, monkeypatch: pytest.MonkeyPatch
) -> None:
    if switchbot is None or switchbot_device is None:
        pytest.fail(INSTALL_HINT)
    monkeypatch.setattr(
        switchbot_device, "BleakClientWithServiceCache", _bumble_client_class(switchbot_bench)
    )
    lock = switchbot_bench.lock
    model = {
        SwitchBotModel.LOCK: switchbot.SwitchbotModel.LOCK,
        SwitchBotModel.LOCK_PRO: switchbot.SwitchbotModel.LOCK_PRO,
    }[lock.model]
    advertisement = await _advertisement(switchbot_bench)
    client = switchbot.SwitchbotLock(
        advertisement.device,
        f"{lock.key_id:02x}",
        lock.keys[lock.key_id].hex(),
        model=model,
        retry_count=0,
    )
    client.update_from_advertisement(advertisement)
    changed = asyncio.Event()
    client.subscribe(changed.set)
    try:
        async with asyncio.timeout(WAIT):
            assert await client.unlock() is True
            # The library hears the bolt come to rest through the lock's notification.
            while client.get_lock_status() is not switchbot.LockStatus.UNLOCKED:
                changed.clear()
                await changed.wait()
        assert lock.position is Position.UNLOCKED
        async with asyncio.timeout(WAIT):
            info = await client.get_basic_info()
        assert info is not None
        assert info["battery"] == lock.battery_percent
        assert info["calibration"] is True
        client.update_from_advertisement(await _advertisement(switchbot_bench))
        async with asyncio.timeout(WAIT):
            assert await client.lock() is True
    finally:
        # The library has no public disconnect; its own, which also ends its 8.5 s
        # disconnect timer (that would otherwise outlive the test).
        await client._execute_disconnect()
    assert lock.count(Command.ACTION, SwitchBotAction.UNLATCH) == 1
    assert lock.count(Command.ACTION, SwitchBotAction.LOCK) == 1
    assert lock.count(Command.NOTIFICATIONS) == 2
