"""A bleak backend on Google's Bumble Bluetooth stack.

bleak talks to the operating system's Bluetooth service (BlueZ on Linux). This backend
talks HCI itself through Bumble instead, so the same bleak code runs:

- on an in-process virtual radio (Bumble's ``LocalLink``): tests, the demo, ``--sim``;
- on any Bumble transport moniker: ``usb:0`` for a USB dongle without BlueZ,
  ``serial:/dev/ttyUSB0``, ``tcp-client:HOST:PORT``, ``hci-socket:0``...

Usage (all through bleak's and bleak-retry-connector's public APIs)::

    from ble.bumble_backend import BumbleAdapter, BumbleClient, BumbleScanner, use_adapter

    adapter = BumbleAdapter.for_transport("usb:0")   # or VirtualRadio().adapter
    await adapter.start()
    with use_adapter(adapter):                       # or set_default_adapter(adapter)
        device = await BleakScanner.find_device_by_address(addr, backend=BumbleScanner)
        client = await establish_connection(
            BleakClientWithServiceCache, device, "front door", backend=BumbleClient
        )
    await adapter.close()

Instead of a default adapter, ``bumble_adapter=adapter`` can be passed to ``BleakScanner``,
``BleakClient`` and ``establish_connection`` (which forwards it).

Modules: ``adapter`` (the central and the default-adapter setting), ``scanner`` and
``client`` (bleak's two backend interfaces), ``advertising`` and ``services`` (pure
translations into bleak's types), ``virtual_radio`` (the in-process link and its faults).
"""

from ble.bumble_backend.adapter import (
    BumbleAdapter,
    resolve_adapter,
    set_default_adapter,
    use_adapter,
)
from ble.bumble_backend.advertising import encode_advertisement
from ble.bumble_backend.client import BumbleClient
from ble.bumble_backend.scanner import BumbleDeviceDetails, BumbleScanner
from ble.bumble_backend.virtual_radio import (
    TEST_ADVERTISING_INTERVAL_MS,
    HciTcpEndpoint,
    VirtualController,
    VirtualRadio,
)

__all__ = [
    "TEST_ADVERTISING_INTERVAL_MS",
    "BumbleAdapter",
    "BumbleClient",
    "BumbleDeviceDetails",
    "BumbleScanner",
    "HciTcpEndpoint",
    "VirtualController",
    "VirtualRadio",
    "encode_advertisement",
    "resolve_adapter",
    "set_default_adapter",
    "use_adapter",
]
