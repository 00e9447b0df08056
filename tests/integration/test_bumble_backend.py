"""The bleak backend on Bumble, exercised only through bleak's and bleak-retry-connector's
public APIs against a real Bumble GATT peripheral on an in-process LocalLink, and once over
a real HCI transport on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak_retry_connector import (
    BleakClientWithServiceCache,
    BleakNotFoundError,
    establish_connection,
)
from bumble import hci

from ble.bumble_backend import (
    BumbleAdapter,
    BumbleClient,
    BumbleDeviceDetails,
    BumbleScanner,
    VirtualRadio,
    encode_advertisement,
    set_default_adapter,
)
from ble.bumble_backend.adapter import resolve_adapter
from tests.support.bumble import (
    ECHO_CHAR_UUID,
    ECHO_SERVICE_UUID,
    INFO_CHAR_UUID,
    INFO_VALUE,
    MANUFACTURER_ID,
    TICK_CHAR_UUID,
    WAIT,
    EchoPeripheral,
    virtual_radio,  # noqa: F401  (a fixture)
)

ADDRESS = "F0:00:00:00:00:01"
OTHER_ADDRESS = "F0:00:00:00:00:02"
CCCD_UUID = "00002902-0000-1000-8000-00805f9b34fb"


async def find(address: str, **kwargs: object) -> BLEDevice:
    device = await BleakScanner.find_device_by_address(
        address, timeout=WAIT, backend=BumbleScanner, **kwargs
    )
    assert device is not None, f"{address} was not found within {WAIT} s"
    return device


async def connected(device: BLEDevice, **kwargs: object) -> BleakClient:
    client = BleakClient(device, backend=BumbleClient, timeout=WAIT, **kwargs)  # type: ignore[arg-type]
    await client.connect()
    return client


# -- scanning -------------------------------------------------------------------------


async def test_scanner_reports_the_advertisement_as_bleak_types(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS, name="Ech")
    seen: asyncio.Queue[tuple[BLEDevice, AdvertisementData]] = asyncio.Queue()
    async with BleakScanner(lambda d, a: seen.put_nowait((d, a)), backend=BumbleScanner):
        device, adv = await asyncio.wait_for(seen.get(), WAIT)
    assert device.address == ADDRESS
    assert device.name == "Ech"
    assert isinstance(device.details, BumbleDeviceDetails)
    assert device.details.connectable
    assert adv.local_name == "Ech"
    assert adv.service_uuids == [ECHO_SERVICE_UUID]
    assert adv.manufacturer_data == {MANUFACTURER_ID: b"\x01"}
    assert -127 <= adv.rssi <= 20


async def test_advertising_reports_are_formatted_only_for_a_debug_log_that_is_on(
    virtual_radio: VirtualRadio,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bumble builds the text of every HCI packet for its debug log even when the level is
    off; at a beacon every 20 ms that was a fifth of a busy gateway's CPU
    (ble/bumble_backend/host.py). Reports still arrive, without the text; with Bumble's
    debug log on, the text is there as before."""
    formatted: list[str] = []
    original = hci.HCI_Event.__str__

    def counting(event: hci.HCI_Event) -> str:
        formatted.append(event.name)
        return original(event)

    monkeypatch.setattr(hci.HCI_Event, "__str__", counting)
    await EchoPeripheral.join(virtual_radio, ADDRESS, name="Ech")

    async def reports(count: int) -> None:
        seen: asyncio.Queue[AdvertisementData] = asyncio.Queue()
        async with BleakScanner(lambda _d, a: seen.put_nowait(a), backend=BumbleScanner):
            for _ in range(count):
                await asyncio.wait_for(seen.get(), WAIT)

    await reports(10)
    assert [name for name in formatted if "ADVERTISING_REPORT" in name] == []

    caplog.set_level(logging.DEBUG, logger="bumble.host")
    caplog.set_level(logging.DEBUG, logger="bumble.controller")
    await reports(3)
    assert any("ADVERTISING_REPORT" in name for name in formatted)
    assert "CONTROLLER -> HOST" in caplog.text


async def test_find_device_by_address_and_by_name(virtual_radio: VirtualRadio) -> None:  # noqa: F811
    await EchoPeripheral.join(virtual_radio, ADDRESS, name="Ech")
    by_address = await find(ADDRESS.lower())
    assert by_address.address == ADDRESS
    by_name = await BleakScanner.find_device_by_name("Ech", timeout=WAIT, backend=BumbleScanner)
    assert by_name is not None
    assert by_name.address == ADDRESS


async def test_scan_responses_reach_active_scanners_only(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    """On air (Core Vol 6, Part B, §4.4.3) only an active scanner sends SCAN_REQ, and the
    SCAN_RSP carries the advertiser's scan response data, not its advertising data again:
    a name kept in the scan response is seen by active scans only (issue 13, point 4)."""
    device = await virtual_radio.create_peripheral(ADDRESS, name="Nuki_1A2B3C4D")
    await device.start_advertising(
        advertising_data=encode_advertisement(manufacturer_data={MANUFACTURER_ID: b"\x07"}),
        scan_response_data=encode_advertisement(local_name="Nuki_1A2B3C4D"),
        advertising_interval_min=virtual_radio.advertising_interval_ms,
        advertising_interval_max=virtual_radio.advertising_interval_ms,
    )
    active = await BleakScanner.find_device_by_name(
        "Nuki_1A2B3C4D", timeout=WAIT, backend=BumbleScanner
    )
    assert active is not None
    assert active.address == ADDRESS

    passive_seen: asyncio.Queue[AdvertisementData] = asyncio.Queue()
    async with BleakScanner(
        lambda _d, adv: passive_seen.put_nowait(adv),
        scanning_mode="passive",
        backend=BumbleScanner,
    ):
        heard = [await asyncio.wait_for(passive_seen.get(), WAIT) for _ in range(3)]
    assert all(adv.manufacturer_data == {MANUFACTURER_ID: b"\x07"} for adv in heard)
    assert all(adv.local_name is None for adv in heard)


async def test_find_device_by_address_gives_none_for_an_absent_device(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    missing = await BleakScanner.find_device_by_address(
        "F0:00:00:00:00:99", timeout=0.3, backend=BumbleScanner
    )
    assert missing is None


async def test_service_uuid_filter_hides_other_advertisers(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    other = await virtual_radio.create_peripheral(OTHER_ADDRESS, name="other")
    await virtual_radio.advertise(other, b"\x02\x01\x06\x03\x03\x0f\x18")  # Battery Service
    filtered: list[str] = []
    other_seen = asyncio.Event()
    unfiltered_count: dict[str, int] = {}

    def on_any(device: BLEDevice, _adv: AdvertisementData) -> None:
        unfiltered_count[device.address] = unfiltered_count.get(device.address, 0) + 1
        if unfiltered_count.get(OTHER_ADDRESS, 0) >= 3:
            other_seen.set()

    async with (
        BleakScanner(
            lambda d, _a: filtered.append(d.address),
            service_uuids=[ECHO_SERVICE_UUID],
            backend=BumbleScanner,
        ),
        BleakScanner(on_any, backend=BumbleScanner),
    ):
        # Both scanners share one controller scan, so once the unfiltered one has seen the
        # other device three times, the filtered one has been offered it too.
        await asyncio.wait_for(other_seen.wait(), WAIT)
    assert ADDRESS in filtered
    assert OTHER_ADDRESS not in filtered


async def test_no_configured_adapter_is_a_clear_bleak_error() -> None:
    with pytest.raises(BleakBluetoothNotAvailableError, match="no Bumble adapter"):
        await BleakScanner.find_device_by_address(ADDRESS, timeout=0.1, backend=BumbleScanner)
    set_default_adapter(None)
    with pytest.raises(BleakBluetoothNotAvailableError, match="not started"):
        resolve_adapter(BumbleAdapter.for_transport("usb:0"))


# -- connecting and GATT --------------------------------------------------------------


async def test_services_characteristics_and_descriptors(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    client = await connected(await find(ADDRESS))
    try:
        assert client.is_connected
        assert client.mtu_size == 247
        service = client.services.get_service(ECHO_SERVICE_UUID)
        assert service is not None
        props = {c.uuid: sorted(c.properties) for c in service.characteristics}
        assert props == {
            INFO_CHAR_UUID: ["read"],
            ECHO_CHAR_UUID: ["indicate", "write", "write-without-response"],
            TICK_CHAR_UUID: ["notify", "read"],
        }
        echo = service.get_characteristic(ECHO_CHAR_UUID)
        assert echo is not None
        assert [d.uuid for d in echo.descriptors] == [CCCD_UUID]
        assert echo.max_write_without_response_size == 244
        cccd = echo.get_descriptor(CCCD_UUID)
        assert cccd is not None
        assert await client.read_gatt_descriptor(cccd) == b"\x00\x00"
    finally:
        await client.disconnect()
    assert not client.is_connected


async def test_read_and_write_with_and_without_response(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    async with BleakClient(await find(ADDRESS), backend=BumbleClient, timeout=WAIT) as client:
        assert await client.read_gatt_char(INFO_CHAR_UUID) == INFO_VALUE
        await client.write_gatt_char(ECHO_CHAR_UUID, b"with", response=True)
        assert await asyncio.wait_for(peripheral.writes.get(), WAIT) == b"with"
        await client.write_gatt_char(ECHO_CHAR_UUID, bytearray(b"without"), response=False)
        assert await asyncio.wait_for(peripheral.writes.get(), WAIT) == b"without"


async def test_att_errors_become_bleak_gatt_protocol_errors(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    async with BleakClient(await find(ADDRESS), backend=BumbleClient, timeout=WAIT) as client:
        with pytest.raises(BleakGATTProtocolError) as raised:
            await client.write_gatt_char(INFO_CHAR_UUID, b"x", response=True)
        assert raised.value.code == BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED
        with pytest.raises(BleakGATTProtocolError) as raised:
            await client.read_gatt_char(ECHO_CHAR_UUID)
        assert raised.value.code == BleakGATTProtocolErrorCode.READ_NOT_PERMITTED


async def test_indications_echo_every_write(virtual_radio: VirtualRadio) -> None:  # noqa: F811
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    received: asyncio.Queue[bytes] = asyncio.Queue()
    async with BleakClient(await find(ADDRESS), backend=BumbleClient, timeout=WAIT) as client:
        await client.start_notify(ECHO_CHAR_UUID, lambda _c, data: received.put_nowait(data))
        assert await asyncio.wait_for(peripheral.subscriptions.get(), WAIT) == (
            "echo",
            False,
            True,
        )
        for value in (b"one", b"two", bytes(range(20))):
            await client.write_gatt_char(ECHO_CHAR_UUID, value, response=True)
            echoed = await asyncio.wait_for(received.get(), WAIT)
            assert echoed == value
            assert isinstance(echoed, bytearray)
        await client.stop_notify(ECHO_CHAR_UUID)
        assert await asyncio.wait_for(peripheral.subscriptions.get(), WAIT) == (
            "echo",
            False,
            False,
        )


async def test_notifications_and_async_callbacks(virtual_radio: VirtualRadio) -> None:  # noqa: F811
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_tick(_char: object, data: bytearray) -> None:
        await received.put(bytes(data))

    async with BleakClient(await find(ADDRESS), backend=BumbleClient, timeout=WAIT) as client:
        await client.start_notify(TICK_CHAR_UUID, on_tick)
        assert await asyncio.wait_for(peripheral.subscriptions.get(), WAIT) == (
            "tick",
            True,
            False,
        )
        await peripheral.notify(b"tick-1")
        await peripheral.notify(b"tick-2")
        assert await asyncio.wait_for(received.get(), WAIT) == b"tick-1"
        assert await asyncio.wait_for(received.get(), WAIT) == b"tick-2"
        with pytest.raises(BleakError, match="already started"):
            await client.start_notify(TICK_CHAR_UUID, on_tick)
        with pytest.raises(BleakError, match="cannot notify or indicate"):
            await client.start_notify(INFO_CHAR_UUID, on_tick)


# -- losing the link --------------------------------------------------------------------


async def test_disconnected_callback_when_the_peripheral_ends_the_link(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    gone = asyncio.Event()
    client = BleakClient(
        await find(ADDRESS),
        disconnected_callback=lambda _c: gone.set(),
        backend=BumbleClient,
        timeout=WAIT,
    )
    await client.connect()
    await peripheral.disconnect_all()
    await asyncio.wait_for(gone.wait(), WAIT)
    assert not client.is_connected
    with pytest.raises(BleakError, match="Not connected"):
        await client.read_gatt_char(INFO_CHAR_UUID)


async def test_disconnected_callback_on_supervision_timeout_and_reconnect(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    calls: list[str] = []
    gone = asyncio.Event()

    def on_gone(client: BleakClient) -> None:
        calls.append(client.address)
        gone.set()

    client = BleakClient(
        await find(ADDRESS), disconnected_callback=on_gone, backend=BumbleClient, timeout=WAIT
    )
    await client.connect()
    assert virtual_radio.drop_link(peripheral.device) == 1
    await asyncio.wait_for(gone.wait(), WAIT)
    assert calls == [ADDRESS]
    # The peripheral advertises again; the same client connects again.
    await client.connect()
    assert await client.read_gatt_char(INFO_CHAR_UUID) == INFO_VALUE
    await client.disconnect()
    assert calls == [ADDRESS, ADDRESS]


async def test_operations_cut_by_link_loss_raise_disconnected_at_once(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    peripheral.hold_reads = asyncio.Event()
    async with BleakClient(await find(ADDRESS), backend=BumbleClient, timeout=WAIT) as client:
        # One read in flight at the peripheral, one queued behind it (ATT allows one
        # request at a time): both must fail with the link, not after the 30 s ATT timeout.
        in_flight = asyncio.create_task(client.read_gatt_char(INFO_CHAR_UUID))
        await asyncio.wait_for(peripheral.read_started.wait(), WAIT)
        queued = asyncio.create_task(client.read_gatt_char(TICK_CHAR_UUID))
        virtual_radio.drop_link(peripheral.device)
        for operation in (in_flight, queued):
            with pytest.raises(BleakError, match="Disconnected"):
                await asyncio.wait_for(operation, WAIT)
        assert not client.is_connected
        with pytest.raises(BleakError, match="Not connected"):
            await client.write_gatt_char(ECHO_CHAR_UUID, b"late", response=True)
    peripheral.hold_reads.set()


async def test_cancelling_an_operation_is_still_a_cancellation(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    peripheral.hold_reads = asyncio.Event()
    async with BleakClient(await find(ADDRESS), backend=BumbleClient, timeout=WAIT) as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.read_gatt_char(INFO_CHAR_UUID), 0.1)
        assert client.is_connected
        # The abandoned request's late answer must not be taken for the next one's.
        next_read = asyncio.create_task(client.read_gatt_char(TICK_CHAR_UUID))
        peripheral.hold_reads.set()
        assert await asyncio.wait_for(next_read, WAIT) == b"\x00"
        assert await client.read_gatt_char(INFO_CHAR_UUID) == INFO_VALUE


async def test_connect_times_out_when_the_device_is_gone_and_the_radio_recovers(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    device = await find(ADDRESS)
    await virtual_radio.remove(peripheral.device)
    loop = asyncio.get_running_loop()
    started = loop.time()
    client = BleakClient(device, backend=BumbleClient, timeout=0.3)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.connect(), WAIT)
    assert loop.time() - started < 0.3 + 2.5
    assert not client.is_connected
    # The controller is free again: another device connects at once.
    await EchoPeripheral.join(virtual_radio, OTHER_ADDRESS)
    other = await connected(await find(OTHER_ADDRESS))
    assert await other.read_gatt_char(INFO_CHAR_UUID) == INFO_VALUE
    await other.disconnect()


async def test_connect_by_address_string_without_a_scan(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    async with BleakClient(ADDRESS, backend=BumbleClient, timeout=WAIT) as client:
        assert await client.read_gatt_char(INFO_CHAR_UUID) == INFO_VALUE


# -- bleak-retry-connector --------------------------------------------------------------


async def test_establish_connection_unchanged(virtual_radio: VirtualRadio) -> None:  # noqa: F811
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    gone = asyncio.Event()
    client = await asyncio.wait_for(
        establish_connection(
            BleakClientWithServiceCache,
            await find(ADDRESS),
            "echo",
            disconnected_callback=lambda _c: gone.set(),
            backend=BumbleClient,
        ),
        WAIT,
    )
    assert isinstance(client, BleakClientWithServiceCache)
    assert client.is_connected
    assert await client.read_gatt_char(INFO_CHAR_UUID) == INFO_VALUE
    await client.disconnect()
    await asyncio.wait_for(gone.wait(), WAIT)


async def test_establish_connection_reports_a_missing_device_as_not_found(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    device = await find(ADDRESS)
    await virtual_radio.remove(peripheral.device)
    with pytest.raises(BleakNotFoundError):
        await asyncio.wait_for(
            establish_connection(
                BleakClientWithServiceCache,
                device,
                "echo",
                max_attempts=2,
                timeout=0.2,
                backend=BumbleClient,
            ),
            WAIT * 2,
        )


# -- a transport moniker, for real ------------------------------------------------------


async def test_adapter_opened_by_moniker_over_hci_on_tcp(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    """The path a USB dongle takes: HCI packets through a Bumble transport, here a TCP
    socket to a controller on the same virtual radio."""
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    endpoint = await virtual_radio.serve_hci_over_tcp()
    assert endpoint.moniker.startswith("tcp-client:127.0.0.1:")
    async with BumbleAdapter.for_transport(endpoint.moniker) as adapter:
        device = await find(ADDRESS, bumble_adapter=adapter)
        received: asyncio.Queue[bytes] = asyncio.Queue()
        async with BleakClient(
            device, backend=BumbleClient, timeout=WAIT, bumble_adapter=adapter
        ) as client:
            assert await client.read_gatt_char(INFO_CHAR_UUID) == INFO_VALUE
            await client.start_notify(ECHO_CHAR_UUID, lambda _c, d: received.put_nowait(d))
            await client.write_gatt_char(ECHO_CHAR_UUID, b"over tcp", response=True)
            assert await asyncio.wait_for(received.get(), WAIT) == b"over tcp"
    assert not adapter.started


async def test_an_unreachable_moniker_is_bluetooth_not_available() -> None:
    adapter = BumbleAdapter.for_transport("tcp-client:127.0.0.1:1")
    with pytest.raises(BleakBluetoothNotAvailableError, match="cannot open"):
        await asyncio.wait_for(adapter.start(), WAIT)


async def test_two_peripherals_at_once_while_a_scan_runs(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    first = await EchoPeripheral.join(virtual_radio, ADDRESS)
    second = await EchoPeripheral.join(virtual_radio, OTHER_ADDRESS)
    received: dict[str, asyncio.Queue[bytes]] = {
        ADDRESS: asyncio.Queue(),
        OTHER_ADDRESS: asyncio.Queue(),
    }
    async with BleakScanner(lambda _d, _a: None, backend=BumbleScanner):
        clients = await asyncio.gather(
            connected(await find(ADDRESS)), connected(await find(OTHER_ADDRESS))
        )
        for client in clients:
            await client.start_notify(
                ECHO_CHAR_UUID, lambda _c, d, q=received[client.address]: q.put_nowait(d)
            )
        await asyncio.gather(
            *(c.write_gatt_char(ECHO_CHAR_UUID, c.address.encode(), response=True) for c in clients)
        )
        for client in clients:
            echoed = await asyncio.wait_for(received[client.address].get(), WAIT)
            assert echoed == client.address.encode()
        assert len(first.connections) == len(second.connections) == 1
        await asyncio.gather(*(c.disconnect() for c in clients))


async def test_closing_the_adapter_disconnects_its_clients(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    await EchoPeripheral.join(virtual_radio, ADDRESS)
    gone = asyncio.Event()
    client = BleakClient(
        await find(ADDRESS),
        disconnected_callback=lambda _c: gone.set(),
        backend=BumbleClient,
        timeout=WAIT,
    )
    await client.connect()
    await virtual_radio.adapter.close()
    await asyncio.wait_for(gone.wait(), WAIT)
    assert not client.is_connected
    with pytest.raises(BleakBluetoothNotAvailableError, match="not started"):
        await client.connect()


async def test_a_cancelled_connect_is_withdrawn_from_the_controller(
    virtual_radio: VirtualRadio,  # noqa: F811
) -> None:
    client = BleakClient(ADDRESS, backend=BumbleClient, timeout=WAIT)
    with pytest.raises(TimeoutError):
        # The caller's own deadline, well before the client's.
        await asyncio.wait_for(client.connect(), 0.2)
    assert not client.is_connected
    # The device turns up later: the controller must not connect to it unasked...
    peripheral = await EchoPeripheral.join(virtual_radio, ADDRESS)
    adverts = 0
    seen_enough = asyncio.Event()

    def count(device: BLEDevice, _adv: AdvertisementData) -> None:
        nonlocal adverts
        if device.address == ADDRESS:
            adverts += 1
            if adverts >= 3:
                seen_enough.set()

    async with BleakScanner(count, backend=BumbleScanner):
        await asyncio.wait_for(seen_enough.wait(), WAIT)
    assert peripheral.connections == []
    assert virtual_radio.adapter.device.connections == {}
    # ...and it is free for the next connect.
    async with BleakClient(ADDRESS, backend=BumbleClient, timeout=WAIT) as again:
        assert await again.read_gatt_char(INFO_CHAR_UUID) == INFO_VALUE
