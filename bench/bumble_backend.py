"""Benchmark: scan and connect through bleak on the Bumble backend, in one process.

Prints one JSON line of medians over ``--runs`` runs (default 20) on a VirtualRadio
(LocalLink, 20 ms advertising interval):

- ``scan_ms``: ``BleakScanner.find_device_by_address`` until the peripheral is found;
- ``connect_ms``: ``BleakClient.connect`` (link, MTU exchange, full service discovery);
- ``read_ms``: one ``read_gatt_char`` round trip;
- ``scan_connect_ms``: the two together, one cold start;
- ``bare_scan_connect_ms``: the reference, the same scan, connect and discovery in bare
  Bumble on the same radio;
- ``bleak_vs_bare``: their ratio, i.e. what the bleak layer costs.

A connect waits for the peripheral's next advertisement (the controller connects on an
ADV_IND), so scan and connect each take about one advertising interval here.

The figures say how much latency the stack adds in-process, not what a radio does: a real
link adds connection-interval and advertising-interval delays (tens to hundreds of ms).

    .venv/bin/python bench/bumble_backend.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from bleak import BleakClient, BleakScanner
from bumble.device import Advertisement, Peer
from bumble.hci import Address

from ble.bumble_backend import (
    BumbleClient,
    BumbleScanner,
    VirtualRadio,
    encode_advertisement,
    use_adapter,
)

ADDRESS = "F0:00:00:00:00:01"


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def run(runs: int) -> dict[str, float | int]:
    scan, connect, read, bare = [], [], [], []
    async with VirtualRadio() as radio:
        peripheral = await radio.create_peripheral(ADDRESS, name="bench")
        await radio.advertise(peripheral, encode_advertisement(local_name="bench"))
        with use_adapter(radio.adapter):
            for _ in range(runs):
                t0 = time.perf_counter()
                device = await BleakScanner.find_device_by_address(
                    ADDRESS, timeout=5, backend=BumbleScanner
                )
                t1 = time.perf_counter()
                assert device is not None
                client = BleakClient(device, backend=BumbleClient, timeout=5)
                await client.connect()
                t2 = time.perf_counter()
                await client.read_gatt_char("00002a00-0000-1000-8000-00805f9b34fb")
                t3 = time.perf_counter()
                await client.disconnect()
                scan.append(t1 - t0)
                connect.append(t2 - t1)
                read.append(t3 - t2)

                # Reference: the same work in bare Bumble, no bleak in between.
                central = radio.adapter.device
                t4 = time.perf_counter()
                found: asyncio.Future[Address] = asyncio.get_running_loop().create_future()

                def on_advertisement(
                    advertisement: Advertisement, found: asyncio.Future[Address] = found
                ) -> None:
                    if advertisement.address.to_string(False) == ADDRESS and not found.done():
                        found.set_result(advertisement.address)

                central.on(central.EVENT_ADVERTISEMENT, on_advertisement)
                await central.start_scanning()
                address = await asyncio.wait_for(found, 5)
                await central.stop_scanning()
                central.remove_listener(central.EVENT_ADVERTISEMENT, on_advertisement)
                connection = await central.connect(address, timeout=5)
                peer = Peer(connection)
                await peer.request_mtu(radio.adapter.att_mtu)
                await peer.discover_all()
                t5 = time.perf_counter()
                await connection.disconnect()
                bare.append(t5 - t4)

    cold = statistics.median(s + c for s, c in zip(scan, connect, strict=True))
    bare_median = statistics.median(bare)
    return {
        "runs": runs,
        "scan_ms": ms(statistics.median(scan)),
        "connect_ms": ms(statistics.median(connect)),
        "read_ms": ms(statistics.median(read)),
        "scan_connect_ms": ms(cold),
        "bare_scan_connect_ms": ms(bare_median),
        "bleak_vs_bare": round(cold / bare_median, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.runs))))


if __name__ == "__main__":
    main()
