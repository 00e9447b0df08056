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

The same for the SwitchBot Lock driver against the virtual SwitchBot Lock (issue 13, "a
second vendor"), compared with the Nuki in the same run:

* ``switchbot_cold_unlock_ms``, ``switchbot_warm_unlock_ms``;
* ``switchbot_vs_nuki_warm``: the SwitchBot warm unlock over the Nuki's;
* ``switchbot_round_trips_per_unlock`` against ``switchbot_protocol_minimum`` (IV request,
  IV, notifications on, its reply, the action, its reply, the resting notification = 7;
  the lock also notifies the bolt moving).

And the lock's radio time (issue 13, "state without polling"), the time a central is
connected to it, which is what drains a lock's batteries:

* ``connected_s_per_day``: a typical day (:data:`DAY`: the gateway's unlocks and relocks,
  the door opened and closed by hand, the knob turned) with the driver as it is: idle
  disconnected, watching the beacon's new-state bit, reading the state only when it is set;
* ``polling_s_per_day``: the same day with the state polled every 30 s instead (each poll a
  connection, a read, the idle disconnect; the gateway's own actions as before);
* ``connected_vs_polling``: their ratio; ``flag_to_status_ms``: median time from a change
  on the lock (the door opened) to the subscriber hearing it, through the beacon.

Each kind of event is measured ``--radio-samples`` times on the virtual lock, apart from each
other as on a real day (each its own connection), with the driver's real idle disconnect
(3 s), and multiplied by the day's counts. On a real radio each connection adds connection
set-up and service discovery and the beacon comes hundreds of milliseconds apart (20 ms
here), so the absolute figures are a floor; the ratio is the point.

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
from ble.driver import LockStatus
from ble.link import BleakTransport
from ble.nuki.driver import NukiDriver, NukiPairing, NukiTimeouts, pair_nuki
from ble.sim.lock import VirtualNukiLock
from ble.sim.peripheral import VirtualNukiPeripheral
from ble.sim.switchbot_lock import VirtualSwitchBotLock
from ble.sim.switchbot_peripheral import VirtualSwitchBotPeripheral
from ble.switchbot.advertisement import mac_bytes
from ble.switchbot.driver import SwitchBotCredentials, SwitchBotDriver, SwitchBotTimeouts

PROTOCOL_MINIMUM = 6
SWITCHBOT_PROTOCOL_MINIMUM = 7
SWITCHBOT_ADDRESS = "C0:4E:5B:00:00:01"
ADDRESS = "C0:4E:01:5A:00:01"
# A typical day at a front door: 6 visits let in by the gateway (an unlock and the relock
# each), the door opened and closed by hand 10 times, the knob turned by hand 4 times.
DAY = {"gateway_actions": 12, "hand_events": 24}
POLL_INTERVAL_S = 30.0
SECONDS_PER_DAY = 86_400
# Bounds every wait of the radio-time measurement.
RADIO_WAIT_S = 20.0


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


async def measure_switchbot(runs: int, nuki_warm_ms: float) -> dict[str, object]:
    async with VirtualRadio() as radio:
        lock = VirtualSwitchBotLock(mac_bytes(SWITCHBOT_ADDRESS), motor_seconds=0.0)
        peripheral = await VirtualSwitchBotPeripheral.join(radio, lock, SWITCHBOT_ADDRESS)
        transport = BleakTransport(
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
            options={"bumble_adapter": radio.adapter},
        )
        timeouts = SwitchBotTimeouts(
            scan_s=5, connect_s=10, step_s=5, motor_s=5, idle_disconnect_s=60
        )
        key = SwitchBotCredentials(SWITCHBOT_ADDRESS, lock.key_id, lock.keys[lock.key_id])

        cold: list[float] = []
        for _ in range(runs):
            driver = SwitchBotDriver(key, transport, timeouts)
            started = time.perf_counter()
            await driver.unlock()
            cold.append((time.perf_counter() - started) * 1000)
            await driver.lock()
            await driver.close()

        warm: list[float] = []
        messages: list[int] = []
        driver = SwitchBotDriver(key, transport, timeouts)
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

    warm_ms = statistics.median(warm)
    return {
        "switchbot_cold_unlock_ms": round(statistics.median(cold), 2),
        "switchbot_warm_unlock_ms": round(warm_ms, 2),
        "switchbot_vs_nuki_warm": round(warm_ms / nuki_warm_ms, 3),
        "switchbot_round_trips_per_unlock": statistics.median(messages),
        "switchbot_protocol_minimum": SWITCHBOT_PROTOCOL_MINIMUM,
    }


async def _connected_during(
    peripheral: VirtualNukiPeripheral, event: object, settle: asyncio.Event | None = None
) -> float:
    """Radio time spent on one event: from before it until its connection has ended."""
    before = peripheral.connected_s
    peripheral.disconnected.clear()
    async with asyncio.timeout(RADIO_WAIT_S):
        if asyncio.iscoroutine(event):
            await event
        if settle is not None:
            await settle.wait()
        await peripheral.disconnected.wait()
        await peripheral.idle.wait()
    return peripheral.connected_s - before


async def measure_radio_time(samples: int) -> dict[str, object]:
    async with VirtualRadio() as radio:
        lock = VirtualNukiLock(motor_seconds=0.0)
        peripheral = await VirtualNukiPeripheral.join(radio, lock, ADDRESS)
        transport = BleakTransport(
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
            options={"bumble_adapter": radio.adapter},
        )
        timeouts = NukiTimeouts(scan_s=5, connect_s=10, step_s=5, motor_s=5)  # idle: 3 s
        await peripheral.press_button_for_pairing()
        pairing = await pair_nuki(ADDRESS, "bench", transport=transport, timeouts=timeouts)
        try:
            watched = await _event_driven(peripheral, lock, pairing, transport, timeouts, samples)
            polled = await _polled(peripheral, pairing, transport, timeouts, samples)
        finally:
            await peripheral.close()
    action_s = statistics.mean(watched["action"])
    hand_s = statistics.mean(watched["hand"])
    poll_s = statistics.mean(polled)
    per_day = DAY["gateway_actions"] * action_s + DAY["hand_events"] * hand_s
    polls = SECONDS_PER_DAY / POLL_INTERVAL_S
    polling_per_day = polls * poll_s + DAY["gateway_actions"] * action_s
    return {
        "radio_samples": samples,
        "day": DAY,
        "connected_s_per_action": round(action_s, 3),
        "connected_s_per_hand_event": round(hand_s, 3),
        "connected_s_per_poll": round(poll_s, 3),
        "connected_s_per_day": round(per_day, 1),
        "polling_s_per_day": round(polling_per_day, 1),
        "connected_vs_polling": round(per_day / polling_per_day, 4),
        "flag_to_status_ms": round(statistics.median(watched["latency_ms"]), 1),
    }


async def _event_driven(
    peripheral: VirtualNukiPeripheral,
    lock: VirtualNukiLock,
    pairing: NukiPairing,
    transport: BleakTransport,
    timeouts: NukiTimeouts,
    samples: int,
) -> dict[str, list[float]]:
    driver = NukiDriver(pairing, transport, timeouts)
    heard: list[tuple[float, LockStatus]] = []
    changed = asyncio.Event()

    def subscriber(status: LockStatus) -> None:
        heard.append((time.perf_counter(), status))
        changed.set()

    unsubscribe = driver.subscribe(subscriber)
    results: dict[str, list[float]] = {"action": [], "hand": [], "latency_ms": []}
    try:
        # The first read (the driver learns the state) is not part of the day.
        await _connected_during(peripheral, driver.status())
        for _ in range(samples):
            for action in (driver.unlock, driver.lock):
                results["action"].append(await _connected_during(peripheral, action()))
            for open_door in (True, False):
                changed.clear()
                started = time.perf_counter()
                (lock.open_door if open_door else lock.close_door)()
                spent = await _connected_during(peripheral, None, settle=changed)
                results["hand"].append(spent)
                results["latency_ms"].append((heard[-1][0] - started) * 1000)
    finally:
        unsubscribe()
        await driver.close()
    return results


async def _polled(
    peripheral: VirtualNukiPeripheral,
    pairing: NukiPairing,
    transport: BleakTransport,
    timeouts: NukiTimeouts,
    samples: int,
) -> list[float]:
    driver = NukiDriver(pairing, transport, timeouts)
    try:
        return [await _connected_during(peripheral, driver.status()) for _ in range(samples)]
    finally:
        await driver.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument(
        "--radio-samples", type=int, default=5, help="each kind of event measured this often"
    )
    parser.add_argument("--smoke", action="store_true", help="3 runs: only checks it works")
    args = parser.parse_args()
    runs = 3 if args.smoke else args.runs
    samples = 1 if args.smoke else args.radio_samples
    if runs < 20 and not args.smoke:
        parser.error("--runs must be at least 20 for a median worth printing")
    if samples < 1:
        parser.error("--radio-samples must be at least 1")
    figures = asyncio.run(measure(runs))
    nuki_warm_ms = float(str(figures["warm_unlock_ms"]))
    figures.update(asyncio.run(measure_switchbot(runs, nuki_warm_ms)))
    figures.update(asyncio.run(measure_radio_time(samples)))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
