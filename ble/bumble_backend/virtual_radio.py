"""A virtual BLE radio in one process, for tests, the demo and ``--sim``.

Bumble's ``LocalLink`` carries advertising and link-layer PDUs between Bumble
``Controller`` objects; each controller has its own Bumble host. A :class:`VirtualRadio` is
one such link with a central :class:`~ble.bumble_backend.adapter.BumbleAdapter` on it, and
lets peripherals (a Bumble ``Device`` with a GATT server, each on its own controller) join::

    async with VirtualRadio() as radio:
        lock = await radio.create_peripheral("F0:11:22:33:44:55", name="Nuki_1A2B3C4D")
        lock.add_service(...)                               # any Bumble GATT service
        await radio.advertise(lock, encode_advertisement(local_name="Nuki_1A2B3C4D"))
        with use_adapter(radio.adapter):
            device = await BleakScanner.find_device_by_address(
                "F0:11:22:33:44:55", backend=BumbleScanner)
            async with BleakClient(device, backend=BumbleClient) as client: ...

Fault injection a real radio shows: :meth:`VirtualRadio.drop_link` ends a connection as a
supervision timeout does (neither side says goodbye), and :meth:`VirtualRadio.remove` takes
a peripheral out of range for good.

:meth:`VirtualRadio.serve_hci_over_tcp` exposes one more controller on this link over HCI on
127.0.0.1, so the transport-moniker path (``tcp-client:127.0.0.1:PORT``) runs for real
without hardware.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Any

from bumble import hci, ll
from bumble.controller import Controller
from bumble.device import Device
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink, Transport, TransportSink, TransportSource
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

from ble.bumble_backend.adapter import DEFAULT_ATT_MTU, BumbleAdapter
from ble.bumble_backend.host import QuietHost

_LOGGER = logging.getLogger(__name__)
_BUMBLE_CONTROLLER_LOG = logging.getLogger("bumble.controller")

CENTRAL_ADDRESS = "C0:00:00:00:00:01"
# Core Vol 4, Part E, §7.8.53: bit 1 of the advertising event properties is "scannable".
_SCANNABLE_EVENT = 1 << 1
# Fast enough that a scan finds a peripheral within a few tens of milliseconds.
TEST_ADVERTISING_INTERVAL_MS = 20.0


class VirtualController(Controller):
    """Bumble's link-layer controller, with two behaviours done as the spec says.

    * **LE Create Connection Cancel.** Bumble's own controller acknowledges the cancel but
      keeps the connection pending, so a connect to an absent device would never end and
      would connect later, unasked. Core Vol 4, Part E, §7.8.13: the pending connection is
      abandoned and an LE Connection Complete event with status Unknown Connection
      Identifier follows the Command Complete.
    * **Scan responses.** Bumble's controller reports every advertisement twice, the second
      time as a "scan response" carrying the *advertising* data again, to passive and active
      scanners alike. On air (Core Vol 6, Part B, §4.4.3), only an active scanner sends a
      SCAN_REQ to a scannable advertiser, and the SCAN_RSP carries the advertiser's *scan
      response data* (a Nuki's name, say). This controller does that, so a scan sees what it
      would see on air.
    """

    # Core Vol 4, Part E, §7.8.64: scan type 0x01 is active (the host sends SCAN_REQ).
    _ACTIVE = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._active_scan = False

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        # Bumble's controller formats every packet for its debug log before logging can say
        # the level is off: with a peripheral beaconing every 20 ms that was a fifth of a
        # test gateway's CPU (see ble/bumble_backend/host.py). Same delivery, text only
        # when it is read.
        if _BUMBLE_CONTROLLER_LOG.isEnabledFor(logging.DEBUG):
            super().send_hci_packet(packet)
        elif self.host:
            asyncio.get_running_loop().call_soon(self.host.on_packet, bytes(packet))

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        failure = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # After the Command Complete that the caller sends when this handler returns.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failure)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def on_hci_le_set_scan_parameters_command(
        self, command: hci.HCI_LE_Set_Scan_Parameters_Command
    ) -> hci.HCI_StatusReturnParameters:
        self._active_scan = command.le_scan_type == self._ACTIVE
        result: hci.HCI_StatusReturnParameters = super().on_hci_le_set_scan_parameters_command(
            command
        )
        return result

    def on_hci_le_set_extended_scan_parameters_command(
        self, command: hci.HCI_LE_Set_Extended_Scan_Parameters_Command
    ) -> hci.HCI_StatusReturnParameters:
        self._active_scan = self._ACTIVE in list(command.scan_types)
        result: hci.HCI_StatusReturnParameters = (
            super().on_hci_le_set_extended_scan_parameters_command(command)
        )
        return result

    def on_advertising_pdu(self, pdu: ll.AdvInd | ll.AdvExtInd) -> None:
        scanning = self.le_scan_enable
        if scanning:
            self._report(pdu)
        # Bumble's handler does the rest (periodic sync, a pending connection); its own
        # reports are the ones replaced above.
        self.le_scan_enable = False
        try:
            super().on_advertising_pdu(pdu)
        finally:
            self.le_scan_enable = scanning

    def _scan_response_of(self, address: hci.Address) -> bytes | None:
        """The scan response data the advertiser at ``address`` sends to a SCAN_REQ, or
        None if it is not scannable (or not advertising)."""
        advertiser = self.link.find_le_controller(address) if self.link else None
        if advertiser is None:
            return None
        legacy = advertiser.le_legacy_advertiser
        if legacy.enabled and legacy.address == address:
            kind = hci.HCI_LE_Set_Advertising_Parameters_Command.AdvertisingType
            scannable = legacy.advertising_type in (kind.ADV_IND, kind.ADV_SCAN_IND)
            return bytes(legacy.scan_response_data) if scannable else None
        for adv_set in advertiser.advertising_sets.values():
            if adv_set.enabled and adv_set.address == address and adv_set.parameters:
                properties = int(adv_set.parameters.advertising_event_properties)
                scannable = bool(properties & _SCANNABLE_EVENT)
                return bytes(adv_set.scan_response_data) if scannable else None
        return None

    def _report(self, pdu: ll.AdvInd | ll.AdvExtInd) -> None:
        response = self._scan_response_of(pdu.advertiser_address)
        reports = [(pdu.data, False)]
        if response is not None and self._active_scan:
            reports.append((response, True))
        for data, is_response in reports:
            if self.le_features & hci.LeFeatureMask.LE_EXTENDED_ADVERTISING:
                kind = hci.HCI_LE_Extended_Advertising_Report_Event.EventType
                event_type = kind.CONNECTABLE_ADVERTISING | kind.LEGACY_ADVERTISING_PDU_USED
                if response is not None:
                    event_type |= kind.SCANNABLE_ADVERTISING
                if is_response:
                    event_type |= kind.SCAN_RESPONSE
                report = hci.HCI_LE_Extended_Advertising_Report_Event.Report(
                    event_type=event_type,
                    address_type=pdu.advertiser_address.address_type,
                    address=pdu.advertiser_address,
                    primary_phy=hci.Phy.LE_1M,
                    secondary_phy=hci.Phy.LE_1M,
                    advertising_sid=0,
                    tx_power=0,
                    rssi=-50,
                    periodic_advertising_interval=0,
                    direct_address_type=0,
                    direct_address=hci.Address.ANY,
                    data=data,
                )
                self.send_hci_packet(hci.HCI_LE_Extended_Advertising_Report_Event([report]))
            else:
                legacy_kind = hci.HCI_LE_Advertising_Report_Event.EventType
                legacy_report = hci.HCI_LE_Advertising_Report_Event.Report(
                    event_type=legacy_kind.SCAN_RSP if is_response else legacy_kind.ADV_IND,
                    address_type=pdu.advertiser_address.address_type,
                    address=pdu.advertiser_address,
                    data=data,
                    rssi=-50,
                )
                self.send_hci_packet(hci.HCI_LE_Advertising_Report_Event([legacy_report]))


@dataclass(frozen=True, slots=True)
class HciTcpEndpoint:
    """A controller on the virtual radio reachable over HCI on 127.0.0.1."""

    moniker: str
    controller: VirtualController
    transport: Transport

    async def close(self) -> None:
        server = getattr(self.transport, "server", None)
        if server is not None:
            server.close()
        await self.transport.close()


class VirtualRadio:
    """One ``LocalLink``, a central adapter on it, and the peripherals that joined it."""

    def __init__(
        self,
        *,
        central_address: str = CENTRAL_ADDRESS,
        advertising_interval_ms: float = TEST_ADVERTISING_INTERVAL_MS,
        att_mtu: int = DEFAULT_ATT_MTU,
    ) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self.advertising_interval_ms = advertising_interval_ms
        # The MTU the central asks for; 23 (the default) means no MTU exchange at all.
        self.att_mtu = att_mtu
        self._central_address = central_address
        self._controllers: dict[Device, VirtualController] = {}
        self._endpoints: list[HciTcpEndpoint] = []
        self._adapter: BumbleAdapter | None = None
        self._counter = 0

    def _controller(
        self,
        name: str,
        host_source: TransportSource | None = None,
        host_sink: TransportSink | None = None,
    ) -> VirtualController:
        self._counter += 1
        return VirtualController(
            f"{name}-{self._counter}", host_source=host_source, host_sink=host_sink, link=self.link
        )

    @property
    def adapter(self) -> BumbleAdapter:
        """The central; started by :meth:`start`."""
        if self._adapter is None:
            raise RuntimeError("the virtual radio is not started")
        return self._adapter

    async def start(self) -> BumbleAdapter:
        if self._adapter is None:
            adapter = BumbleAdapter.for_controller(
                self._controller("central"), address=self._central_address, att_mtu=self.att_mtu
            )
            await adapter.start()
            self._adapter = adapter
        return self._adapter

    async def close(self) -> None:
        for device in list(self._controllers):
            await self.remove(device)
        for endpoint in self._endpoints:
            await endpoint.close()
        self._endpoints.clear()
        if self._adapter is not None:
            await self._adapter.close()
            self._adapter = None

    async def __aenter__(self) -> VirtualRadio:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- peripherals --------------------------------------------------------------------

    async def create_peripheral(self, address: str, *, name: str = "peripheral") -> Device:
        """A powered-on Bumble ``Device`` with its own controller on this radio, using
        ``address`` as its random static address. Add GATT services, then :meth:`advertise`."""
        controller = self._controller(name)
        device = Device(
            name=name,
            address=hci.Address(address),
            host=QuietHost(controller, AsyncPipeSink(controller)),
        )
        await device.power_on()
        self._controllers[device] = controller
        return device

    async def advertise(self, device: Device, advertising_data: bytes) -> None:
        """Advertise connectable at the radio's interval, again after every disconnection."""
        await device.start_advertising(
            advertising_data=advertising_data,
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
            auto_restart=True,
        )

    def drop_link(self, device: Device) -> int:
        """End every connection of ``device`` as a supervision timeout would: both hosts
        learn it from their own controller, no PDU is exchanged. Returns how many."""
        controller = self._controllers[device]
        dropped = 0
        for peer_address, connection in list(controller.le_connections.items()):
            other = self.link.find_le_controller(peer_address)
            if other is not None and other is not controller:
                other_connection = other.le_connections.get(connection.self_address)
                if other_connection is not None:
                    other.on_le_disconnected(other_connection, hci.HCI_CONNECTION_TIMEOUT_ERROR)
            controller.on_le_disconnected(connection, hci.HCI_CONNECTION_TIMEOUT_ERROR)
            dropped += 1
        return dropped

    async def remove(self, device: Device) -> None:
        """Take ``device`` out of range for good: its links drop as on a supervision timeout
        and its controller moves to a link of its own, where whatever it still sends (an
        advertising restart after the drop, say) reaches no one."""
        controller = self._controllers.get(device)
        if controller is None:
            return
        self.drop_link(device)
        del self._controllers[device]
        self.link.remove_controller(controller)
        elsewhere = LocalLink()  # type: ignore[no-untyped-call]
        controller.link = elsewhere
        elsewhere.add_controller(controller)
        await device.power_off()

    # -- the transport-moniker path -----------------------------------------------------

    async def serve_hci_over_tcp(self) -> HciTcpEndpoint:
        """A new controller on this radio, served over HCI on a free 127.0.0.1 port.

        Open it with ``BumbleAdapter.for_transport(endpoint.moniker)``. It stops when the
        radio closes.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        transport = await open_tcp_server_transport_with_socket(sock)
        controller = self._controller("tcp", host_source=transport.source, host_sink=transport.sink)
        endpoint = HciTcpEndpoint(f"tcp-client:127.0.0.1:{port}", controller, transport)
        self._endpoints.append(endpoint)
        return endpoint
