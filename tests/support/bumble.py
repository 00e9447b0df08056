"""Fixtures for tests that need real bleak over Bumble: a started virtual radio that is the
default adapter, and a small GATT peripheral to talk to.

Import the fixtures into a test module (``from tests.support.bumble import virtual_radio``)
and build peripherals with :meth:`EchoPeripheral.join`. Every wait helper takes a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from bumble.att import ATT_READ_NOT_PERMITTED_ERROR, ATT_WRITE_NOT_PERMITTED_ERROR, ATT_Error
from bumble.device import Connection, Device
from bumble.gatt import (
    Characteristic,
    CharacteristicValue,
    Service,
)

from ble.bumble_backend import VirtualRadio, encode_advertisement, use_adapter

# Every test wait is bounded by this unless it says otherwise.
WAIT = 5.0

ECHO_SERVICE_UUID = "5c3a0001-2a1b-4d6e-9f00-7468726573a0"
INFO_CHAR_UUID = "5c3a0002-2a1b-4d6e-9f00-7468726573a0"
ECHO_CHAR_UUID = "5c3a0003-2a1b-4d6e-9f00-7468726573a0"
TICK_CHAR_UUID = "5c3a0004-2a1b-4d6e-9f00-7468726573a0"
MANUFACTURER_ID = 0xFFFF  # reserved for tests by the Bluetooth SIG
INFO_VALUE = b"threshold-echo"


@pytest.fixture
async def virtual_radio() -> AsyncIterator[VirtualRadio]:
    """A started :class:`VirtualRadio` whose adapter is the backend's default."""
    async with VirtualRadio() as radio:
        with use_adapter(radio.adapter):
            yield radio


def _refuse_write(_connection: Connection, _value: bytes) -> None:
    # Bumble's GATT server does not enforce attribute permissions itself; a handler that
    # raised anything but ATT_Error would leave the request unanswered for 30 s.
    raise ATT_Error(ATT_WRITE_NOT_PERMITTED_ERROR)


def _refuse_read(_connection: Connection) -> bytes:
    raise ATT_Error(ATT_READ_NOT_PERMITTED_ERROR)


@dataclass
class EchoPeripheral:
    """A Bumble GATT peripheral with one service:

    - *info*: read-only, returns :data:`INFO_VALUE` (or waits while ``hold_reads`` is set);
    - *echo*: write (with or without response) + indicate; every write is indicated back;
    - *tick*: read + notify; :meth:`notify` pushes a value.
    """

    radio: VirtualRadio
    device: Device
    address: str
    name: str
    writes: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    subscriptions: asyncio.Queue[tuple[str, bool, bool]] = field(default_factory=asyncio.Queue)
    connections: list[Connection] = field(default_factory=list)
    read_started: asyncio.Event = field(default_factory=asyncio.Event)
    # Set whenever a central's link ends; a test clears it before it waits.
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    hold_reads: asyncio.Event | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    async def join(
        cls, radio: VirtualRadio, address: str, *, name: str = "Ech", advertise: bool = True
    ) -> EchoPeripheral:
        device = await radio.create_peripheral(address, name=name)
        peripheral = cls(radio, device, address, name)
        peripheral._build_gatt()
        device.on(device.EVENT_CONNECTION, peripheral._on_connection)
        if advertise:
            await peripheral.advertise()
        return peripheral

    async def advertise(self) -> None:
        await self.radio.advertise(
            self.device,
            encode_advertisement(
                local_name=self.name,
                service_uuids=[ECHO_SERVICE_UUID],
                manufacturer_data={MANUFACTURER_ID: b"\x01"},
            ),
        )

    def _build_gatt(self) -> None:
        self.info = Characteristic(
            INFO_CHAR_UUID,
            Characteristic.Properties.READ,
            Characteristic.READABLE,
            CharacteristicValue(read=self._read_info, write=_refuse_write),
        )
        self.echo = Characteristic(
            ECHO_CHAR_UUID,
            Characteristic.Properties.WRITE
            | Characteristic.Properties.WRITE_WITHOUT_RESPONSE
            | Characteristic.Properties.INDICATE,
            Characteristic.WRITEABLE,
            CharacteristicValue(read=_refuse_read, write=self._on_echo_write),
        )
        self.tick = Characteristic(
            TICK_CHAR_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            b"\x00",
        )
        for characteristic, label in ((self.echo, "echo"), (self.tick, "tick")):
            characteristic.on(
                characteristic.EVENT_SUBSCRIPTION,
                lambda _bearer, notify, indicate, label=label: self.subscriptions.put_nowait(
                    (label, notify, indicate)
                ),
            )
        self.device.add_service(Service(ECHO_SERVICE_UUID, [self.info, self.echo, self.tick]))

    async def _read_info(self, _connection: Connection) -> bytes:
        self.read_started.set()
        if self.hold_reads is not None:
            await self.hold_reads.wait()
        return INFO_VALUE

    def _on_echo_write(self, _connection: Connection, value: bytes) -> None:
        self.writes.put_nowait(bytes(value))
        # Indicate after the write completes, as a real device answers a command.
        task = asyncio.get_running_loop().create_task(self._indicate(bytes(value)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _indicate(self, value: bytes) -> None:
        with contextlib.suppress(Exception):
            await self.device.indicate_subscribers(self.echo, value)

    def _on_connection(self, connection: Connection) -> None:
        self.connections.append(connection)

        def ended(_reason: object) -> None:
            self.connections.remove(connection)
            self.disconnected.set()

        connection.on(connection.EVENT_DISCONNECTION, ended)

    async def notify(self, value: bytes) -> None:
        await self.device.notify_subscribers(self.tick, value)

    async def disconnect_all(self) -> None:
        """The peripheral ends its links itself (an LL_TERMINATE_IND to the central)."""
        for connection in list(self.connections):
            await connection.disconnect()
