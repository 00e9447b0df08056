"""Benchmark: how long an unlock takes through the real bleak stack, cold and warm.

Over the in-process Bumble link (no radio), against the virtual Nuki with a motor that takes
no time, so the figures are the software's own cost: bleak, bleak-retry-connector, the Bumble
backend and host, the Nuki codecs and crypto.

* ``cold_unlock_ms``: a new driver: scan, connect, subscribe, challenge, action, COMPLETE;
* ``warm_unlock_ms``: the same with the connection already up;
* ``warm_vs_cold``: their ratio (this machine is shared and noisy; the ratio holds better
  than either time);
* ``round_trips_per_unlock``: messages exchanged per unlock, against the protocol minimum
  (challenge request, challenge, action, ACCEPTED, Keyturner States, COMPLETE = 6).

Prints one JSON line. Medians over ``--runs`` (at least 20) unlocks each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ble.bumble_backend import BumbleClient, BumbleScanner, VirtualRadio
from ble.link import BleakTransport
from ble.nuki.driver import NukiDriver, NukiTimeouts, pair_nuki
from ble.sim.lock import VirtualNukiLock
from ble.sim.peripheral import VirtualNukiPeripheral

PROTOCOL_MINIMUM = 6
ADDRESS = "C0:4E:01:5A:00:01"


async def measure(runs: int) -> dict[str, object]:
    async with VirtualRadio() as radio:
        lock = VirtualNukiLock(motor_seconds=0.0)
        peripheral = await VirtualNukiPeripheral.join(radio, lock, ADDRESS)
        transport = BleakTransport(
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
            options={"bumble_adapter": radio.adapter},
        )
        timeouts = NukiTimeouts(scan_s=5, connect_s=10, step_s=5, motor_s=5, idle_disconnect_s=60)
        await peripheral.press_button_for_pairing()
        pairing = await pair_nuki(ADDRESS, "bench", transport=transport, timeouts=timeouts)

        cold: list[float] = []
        for _ in range(runs):
            driver = NukiDriver(pairing, transport, timeouts)
            started = time.perf_counter()
            await driver.unlock()
            cold.append((time.perf_counter() - started) * 1000)
            await driver.lock()
            await driver.close()

        warm: list[float] = []
        messages: list[int] = []
        driver = NukiDriver(pairing, transport, timeouts)
        await driver.status()  # connect once
        for _ in range(runs):
            sent, received = driver.frames_sent, driver.frames_received
            started = time.perf_counter()
            await driver.unlock()
            warm.append((time.perf_counter() - started) * 1000)
            messages.append(driver.frames_sent - sent + driver.frames_received - received)
            await driver.lock()
        await driver.close()
        await peripheral.close()

    cold_ms, warm_ms = statistics.median(cold), statistics.median(warm)
    return {
        "benchmark": "ble_unlock",
        "link": "bumble LocalLink, in process",
        "runs": runs,
        "cold_unlock_ms": round(cold_ms, 2),
        "warm_unlock_ms": round(warm_ms, 2),
        "warm_vs_cold": round(warm_ms / cold_ms, 3),
        "round_trips_per_unlock": statistics.median(messages),
        "protocol_minimum": PROTOCOL_MINIMUM,
        "vs_minimum": round(statistics.median(messages) / PROTOCOL_MINIMUM, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--smoke", action="store_true", help="3 runs: only checks it works")
    args = parser.parse_args()
    runs = 3 if args.smoke else args.runs
    if runs < 20 and not args.smoke:
        parser.error("--runs must be at least 20 for a median worth printing")
    print(json.dumps(asyncio.run(measure(runs))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
