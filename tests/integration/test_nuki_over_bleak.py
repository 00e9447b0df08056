"""The Nuki driver end to end through the REAL bleak API (BleakScanner, BleakClient,
bleak-retry-connector's establish_connection) over the Bumble backend, against the virtual
Nuki lock on an in-process radio."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest

from ble.bumble_backend import VirtualRadio
from ble.driver import DoorState, LockDriver, LockState
from ble.errors import LockNotAuthorized
from ble.link import Advertisement, AdvertisementWatch
from ble.nuki.advertisement import APPLE_COMPANY_ID
from ble.nuki.config import Config, RequestConfig
from ble.nuki.driver import NukiDriver, NukiPairing, scan_nuki
from ble.nuki.errors import NukiPairingRefused
from ble.nuki.frames import Command, decode_encrypted
from ble.nuki.messages import (
    ErrorCode,
    ErrorReport,
    KeyturnerStates,
    LockAction,
    NukiLockState,
    NukiState,
    RequestData,
)
from ble.nuki.models import TRAITS, NukiModel
from ble.nuki.reassembly import is_plain_error_report
from ble.sim.lock import VirtualNukiLock
from ble.sim.peripheral import VirtualNukiPeripheral
from tests.support.nuki import (
    LOCK_ADDRESS,
    TEST_TIMEOUTS,
    WAIT,
    NukiBench,
    RawNukiClient,
    StatusRecorder,
    bumble_transport,
    nuki_bench,
)

__all__ = ["nuki_bench"]


async def test_pairing_is_refused_outside_pairing_mode(nuki_bench: NukiBench) -> None:
    from ble.nuki.driver import pair_nuki

    with pytest.raises(NukiPairingRefused) as info:
        await pair_nuki(
            nuki_bench.peripheral.address,
            "intruder",
            transport=nuki_bench.transport,
            timeouts=TEST_TIMEOUTS,
        )
    assert "pairing mode" in info.value.message
    assert nuki_bench.lock.authorizations == {}


async def test_pairing_succeeds_in_pairing_mode(nuki_bench: NukiBench) -> None:
    pairing = await nuki_bench.pair("front door gateway")
    stored = nuki_bench.lock.authorizations[pairing.auth_id]
    assert stored.key == pairing.shared_key
    assert stored.name == "front door gateway"
    assert pairing.address == nuki_bench.peripheral.address
    assert NukiPairing.from_json(pairing.to_json()) == pairing
    assert not nuki_bench.lock.pairing_mode


async def test_scan_finds_the_lock_and_its_pairing_mode(nuki_bench: NukiBench) -> None:
    await nuki_bench.peripheral.press_button_for_pairing()
    found = await scan_nuki(nuki_bench.transport, scan_s=0.5)
    assert [lock.address for lock in found] == [nuki_bench.peripheral.address]
    assert found[0].pairing_mode
    # The name is in the scan response (issue 13, point 4): an active scan sees it.
    assert found[0].name == nuki_bench.lock.name


async def test_unlock_lock_unlatch_each_followed_by_a_state_read(nuki_bench: NukiBench) -> None:
    driver = nuki_bench.driver(await nuki_bench.pair())
    assert isinstance(driver, LockDriver)
    try:
        assert (await driver.status()).lock is LockState.LOCKED
        assert (await driver.unlock()).lock is LockState.UNLOCKED
        assert (await driver.status()).lock is LockState.UNLOCKED
        assert (await driver.lock()).lock is LockState.LOCKED
        assert (await driver.status()).lock is LockState.LOCKED
        assert (await driver.unlatch()).lock is LockState.UNLOCKED
        assert (await driver.status()).lock is LockState.UNLOCKED
    finally:
        await driver.close()
    lock = nuki_bench.lock
    assert lock.count(Command.LOCK_ACTION, LockAction.UNLOCK) == 1
    assert lock.count(Command.LOCK_ACTION, LockAction.LOCK) == 1
    assert lock.count(Command.LOCK_ACTION, LockAction.UNLATCH) == 1
    assert lock.count_requests(Command.KEYTURNER_STATES) == 4
    assert lock.count_requests(Command.CHALLENGE) == 3


async def test_subscriber_sees_motor_and_door_changes(nuki_bench: NukiBench) -> None:
    driver = nuki_bench.driver(await nuki_bench.pair())
    recorder = StatusRecorder()
    unsubscribe = driver.subscribe(recorder)
    try:
        await driver.unlock()
        await recorder.wait_for(lambda s: s.lock is LockState.UNLOCKING)
        await recorder.wait_for(lambda s: s.lock is LockState.UNLOCKED)
        # Nobody asked: the lock flags a new state in its advertisement and the driver's
        # watcher reads it.
        nuki_bench.lock.open_door()
        await recorder.wait_for(lambda s: s.door is DoorState.OPEN)
        nuki_bench.lock.close_door()
        seen_open = len(recorder.seen)
        closed = await recorder.wait_for(
            lambda s: s.door is DoorState.CLOSED and recorder.seen.index(s) >= seen_open
        )
        assert closed.lock is LockState.UNLOCKED
        # The knob turned by hand: no command, only the beacon's flag.
        nuki_bench.lock.turn_knob(locked=True)
        await recorder.wait_for(lambda s: s.lock is LockState.LOCKED)
    finally:
        unsubscribe()
        await driver.close()


async def test_battery_critical_is_reported(nuki_bench: NukiBench) -> None:
    driver = nuki_bench.driver(await nuki_bench.pair())
    try:
        healthy = await driver.status()
        assert healthy.battery_percent == 84
        assert not healthy.battery_critical
        nuki_bench.lock.set_battery(12)
        low = await driver.status()
        assert low.battery_critical
        assert low.battery_percent == 12
    finally:
        await driver.close()


async def test_a_lock_that_forgot_the_gateway_is_not_authorized(nuki_bench: NukiBench) -> None:
    pairing = await nuki_bench.pair()
    nuki_bench.lock.authorizations.clear()  # the owner removed the gateway in the Nuki app
    driver = nuki_bench.driver(pairing)
    try:
        with pytest.raises(LockNotAuthorized) as info:
            await driver.status()
        assert "pair" in info.value.message
        with pytest.raises(LockNotAuthorized):
            await driver.unlock()
    finally:
        await driver.close()
    assert nuki_bench.lock.count(Command.LOCK_ACTION) == 0


async def test_two_drivers_for_one_lock_never_interleave(nuki_bench: NukiBench) -> None:
    import asyncio

    pairing = await nuki_bench.pair()
    first: NukiDriver = nuki_bench.driver(pairing)
    second: NukiDriver = nuki_bench.driver(pairing)
    try:
        results = await asyncio.gather(first.unlock(), second.status(), first.lock())
    finally:
        await first.close()
        await second.close()
    assert results[0].lock is LockState.UNLOCKED
    assert results[2].lock is LockState.LOCKED
    assert nuki_bench.lock.count(Command.LOCK_ACTION) == 2


async def test_idle_link_is_closed_and_the_next_connect_subscribes_again(
    nuki_bench: NukiBench,
) -> None:
    import asyncio
    import dataclasses

    timeouts = dataclasses.replace(TEST_TIMEOUTS, idle_disconnect_s=0.2)
    driver = nuki_bench.driver(await nuki_bench.pair(), timeouts)
    peripheral = nuki_bench.peripheral
    try:
        await driver.status()
        assert driver.connected
        async with asyncio.timeout(5):
            await peripheral.idle.wait()
        assert not driver.connected
        # A fresh connection: the lock forgot the subscription, the driver renews it, or
        # this read would never get its reply.
        assert (await driver.unlock()).lock is LockState.UNLOCKED
    finally:
        await driver.close()


async def test_pairing_over_bleak_reproduces_the_documented_shared_key() -> None:
    import json
    from pathlib import Path

    from ble.bumble_backend import VirtualRadio
    from ble.nuki.driver import pair_nuki
    from ble.sim.lock import VirtualNukiLock
    from ble.sim.peripheral import VirtualNukiPeripheral
    from tests.support.nuki import LOCK_ADDRESS, bumble_transport

    vectors = json.loads((Path(__file__).parents[1] / "data" / "nuki-ble.json").read_text())
    async with VirtualRadio() as radio:
        lock = VirtualNukiLock(bytes.fromhex(vectors["lock_private_key"]))
        peripheral = await VirtualNukiPeripheral.join(radio, lock, LOCK_ADDRESS)
        try:
            await peripheral.press_button_for_pairing()
            pairing = await pair_nuki(
                LOCK_ADDRESS,
                "vectors",
                transport=bumble_transport(radio),
                timeouts=TEST_TIMEOUTS,
                client_private=bytes.fromhex(vectors["client_private_key"]),
            )
        finally:
            await peripheral.close()
    assert pairing.shared_key == bytes.fromhex(vectors["shared_key"])


@pytest.mark.parametrize(("att_mtu", "largest_piece"), [(247, 244), (23, 20)])
async def test_replies_are_cut_at_the_negotiated_mtu(att_mtu: int, largest_piece: int) -> None:
    """Issue 13, point 1. Nuki BLE API §3 shows 20-byte pieces, which is the default ATT
    MTU of 23 minus the 3-byte ATT header; real Smart Lock 2.0 and 4.0 locks send 81- and
    132-byte messages in one indication after an MTU exchange (Core Vol 3, Part F,
    §3.4.7.2: a value of up to ATT_MTU - 3 bytes). Clients written against real locks read
    one indication as one message; the driver handles both."""
    async with VirtualRadio(att_mtu=att_mtu) as radio:
        lock = VirtualNukiLock(motor_seconds=0.05)
        peripheral = await VirtualNukiPeripheral.join(radio, lock, LOCK_ADDRESS)
        bench = NukiBench(radio, peripheral, lock, bumble_transport(radio))
        try:
            pairing = await bench.pair()
            driver = bench.driver(pairing)
            try:
                assert (await driver.status()).lock is LockState.LOCKED
                assert (await driver.unlock()).lock is LockState.UNLOCKED
            finally:
                await driver.close()
            raw = await RawNukiClient.connect(radio, pairing)
            try:
                pieces = await raw.request(
                    Command.REQUEST_DATA, RequestData(Command.KEYTURNER_STATES).encode()
                )
            finally:
                await raw.close()
        finally:
            await peripheral.close()
    frame = b"".join(pieces)
    _, command, payload = decode_encrypted(pairing.shared_key, frame)
    assert command == Command.KEYTURNER_STATES
    assert KeyturnerStates.decode(payload).lock_state is NukiLockState.UNLOCKED
    assert set(peripheral.indication_sizes) == {largest_piece}
    if len(frame) <= largest_piece:
        assert pieces == [frame]  # one indication, one message
    else:
        assert all(len(piece) <= largest_piece for piece in pieces)
        assert len(pieces) == -(-len(frame) // largest_piece)


async def test_a_reconnect_right_after_pairing_is_answered(nuki_bench: NukiBench) -> None:
    """Issue 13, point 2. Leaving pairing mode changes what the lock advertises; a client
    that disconnects after pairing and reconnects at once, without scanning (as clients
    that keep the device object do), must reach a lock that answers. Restarting the
    advertising set there lost the connection event ("advertising set not found") and every
    write went unanswered; the data is now updated in place."""
    pairing = await nuki_bench.pair()
    assert not nuki_bench.lock.pairing_mode
    raw = await RawNukiClient.connect(nuki_bench.radio, pairing)
    try:
        pieces = await raw.request(
            Command.REQUEST_DATA, RequestData(Command.KEYTURNER_STATES).encode()
        )
    finally:
        await raw.close()
    _, command, payload = decode_encrypted(pairing.shared_key, b"".join(pieces))
    assert command == Command.KEYTURNER_STATES
    assert KeyturnerStates.decode(payload).nuki_state is NukiState.DOOR_MODE


async def test_request_config_and_encrypted_error_reports(nuki_bench: NukiBench) -> None:
    """Issue 13, point 3. Nuki BLE API §6: Request Config (0x0014) carries the nonce of a
    Challenge asked just before, and the lock answers Config (0x0015); clients ask it on
    their first poll. §7: the lock's error reports are encrypted when it holds the sender's
    key (a wrong nonce, a command it does not know); only a sender whose frame does not open
    under the key gets a plain one."""
    pairing = await nuki_bench.pair()
    raw = await RawNukiClient.connect(nuki_bench.radio, pairing)
    key = pairing.shared_key

    async def ask(command: int, payload: bytes) -> tuple[int, bytes]:
        _, reply, body = decode_encrypted(key, b"".join(await raw.request(command, payload)))
        return reply, body

    try:
        command, body = await ask(Command.REQUEST_DATA, RequestData(Command.CHALLENGE).encode())
        assert command == Command.CHALLENGE
        command, body = await ask(Command.REQUEST_CONFIG, RequestConfig(body).encode())
        assert command == Command.CONFIG
        config = Config.decode(body)
        assert config.nuki_id == nuki_bench.lock.nuki_id
        assert config.name == nuki_bench.lock.name

        # Without a fresh challenge: refused, encrypted.
        command, body = await ask(Command.REQUEST_CONFIG, RequestConfig(bytes(32)).encode())
        assert command == Command.ERROR_REPORT
        assert ErrorReport.decode(body) == ErrorReport(
            ErrorCode.K_ERROR_BAD_NONCE, Command.REQUEST_CONFIG
        )
        # A command this lock does not implement (Request Log Entries, 0x0031): encrypted.
        command, body = await ask(0x0031, bytes(40))
        assert command == Command.ERROR_REPORT
        assert ErrorReport.decode(body).command == 0x0031

        # A frame that does not open under the authorization's key: plain.
        wrong = NukiPairing(pairing.address, pairing.auth_id, bytes(32), 1, b"", "x")
        raw.pairing = wrong
        pieces = await raw.request(Command.REQUEST_DATA, RequestData(Command.CHALLENGE).encode())
        assert is_plain_error_report(b"".join(pieces))
    finally:
        await raw.close()


async def test_the_lock_advertises_as_its_model_does(nuki_bench: NukiBench) -> None:
    """Issue 13, points 4 and 5: an active scan sees the lock's name (from its scan
    response) and the model's beacon byte, 0xC4 for Smart Lock 2.0 and 0xC8 for 3.0 and 4.0,
    whose lowest bit goes up with a change and down once the states are read."""
    pairing = await nuki_bench.pair()
    power = TRAITS[nuki_bench.lock.model].beacon_power
    heard: asyncio.Queue[Advertisement] = asyncio.Queue()
    watch = await AdvertisementWatch.start(nuki_bench.transport, heard.put_nowait, WAIT)

    async def beacon_byte(predicate: Callable[[int], bool]) -> Advertisement:
        async with asyncio.timeout(WAIT):
            while True:
                adv = await heard.get()
                beacon = adv.manufacturer_data.get(APPLE_COMPANY_ID)
                if adv.address == pairing.address and beacon and predicate(beacon[-1]):
                    return adv

    driver = nuki_bench.driver(pairing)
    try:
        await driver.status()
        seen = await beacon_byte(lambda byte: byte == power)
        assert seen.name == nuki_bench.lock.name
        nuki_bench.lock.open_door()
        await beacon_byte(lambda byte: byte == power | 1)
        await driver.status()
        await beacon_byte(lambda byte: byte == power)
    finally:
        await watch.stop()
        await driver.close()


async def test_the_driver_reads_the_config_and_asks_again_once(nuki_bench: NukiBench) -> None:
    """The driver's side of Request Config (§6): challenge, Request Config, Config; the
    model shows in it (device type from 3.0 on, the firmware's generation). Read-only, so
    an unreadable reply is asked for once more."""
    driver = nuki_bench.driver(await nuki_bench.pair())
    lock = nuki_bench.lock
    try:
        config = await driver.config()
        assert config.nuki_id == lock.nuki_id
        assert config.name == lock.name
        assert config.firmware == TRAITS[lock.model].firmware
        assert config.device_type == TRAITS[lock.model].device_type
        lock.faults.corrupt_crc_replies = 1
        lock.faults.corrupt_only = Command.CONFIG
        assert (await driver.config()).nuki_id == lock.nuki_id
    finally:
        await driver.close()
    assert lock.count(Command.REQUEST_CONFIG) == 3


async def test_messages_have_the_sizes_real_locks_send_whole(nuki_bench: NukiBench) -> None:
    """Issue 13, point 1: real Smart Lock 2.0 and 4.0 locks were seen sending 81- and
    132-byte messages in one notification. With current firmware's fields (pyNukiBT's
    KeyturnerStates and Config) Keyturner States is 81 bytes encrypted and a 4.0's Config
    132; on a 247-byte MTU each arrives in one indication."""
    pairing = await nuki_bench.pair()
    raw = await RawNukiClient.connect(nuki_bench.radio, pairing)
    try:
        states = await raw.request(
            Command.REQUEST_DATA, RequestData(Command.KEYTURNER_STATES).encode()
        )
        challenge = await raw.request(Command.REQUEST_DATA, RequestData(Command.CHALLENGE).encode())
        _, _, nonce = decode_encrypted(pairing.shared_key, b"".join(challenge))
        config = await raw.request(Command.REQUEST_CONFIG, RequestConfig(nonce).encode())
    finally:
        await raw.close()
    assert [len(piece) for piece in states] == [81]
    expected_config = {
        NukiModel.SMART_LOCK_2: 128,
        NukiModel.SMART_LOCK_3: 130,
        NukiModel.SMART_LOCK_4: 132,
    }[nuki_bench.lock.model]
    assert [len(piece) for piece in config] == [expected_config]
    _, _, payload = decode_encrypted(pairing.shared_key, states[0])
    assert KeyturnerStates.decode(payload).encode() == payload


async def test_a_change_is_seen_while_a_connection_lingers(nuki_bench: NukiBench) -> None:
    """The lock goes on beaconing while a central is connected: a door opened while the
    driver's connection lingers after a read (idle disconnect not yet due) reaches the
    subscriber through the beacon's flag at once, not after the link has gone idle."""
    lingering = dataclasses.replace(TEST_TIMEOUTS, idle_disconnect_s=60.0)
    driver = nuki_bench.driver(await nuki_bench.pair(), lingering)
    recorder = StatusRecorder()
    unsubscribe = driver.subscribe(recorder)
    try:
        await driver.status()
        assert driver.connected
        nuki_bench.lock.open_door()
        await recorder.wait_for(lambda s: s.door is DoorState.OPEN)
        assert driver.connected  # seen while the connection lingered
    finally:
        unsubscribe()
        await driver.close()
