"""Benchmark: what the paced upload costs, how long the queue makes a busy day wait, and how
far apart a busy day and a quiet one look to the relay (docs/privacy.md).

Two real gateways (``threshold init``, the virtual lock, the paced sync task) run side by
side, each in its own process, against their own reference relay through a recording proxy
(``tests/support/observer.py``): one has a busy day (two deliveries, a cleaner, an emergency,
a survey the owner approves), the other nobody at the door. The schedule is the default one
(``[cloud] slots = 4``) on a fast clock (``--interval``), so figures in slots carry over to
the default 60 s interval. Prints one JSON line:

- ``bytes_per_day``: the quiet day's bytes on the wire per exchange (both ways, headers
  included), times the 1,440 exchanges of a day at the default interval;
- ``busy_vs_idle_bytes``: the busy day's wire bytes over the quiet day's, slot by slot
  (the reference measured in the same run; 1.0 is what privacy asks);
- ``queue_delay_p99_s``: the 99th percentile of how long the busy day's real entries waited
  for their slot, at the default 60 s interval (``queue_delay_p99_slots`` x 60), and the
  same figure in seconds of the fast clock (``queue_delay_p99_fast_s``);
- ``busy_vs_idle_distance``: ``sizes``, the number of slots whose requests, sizes or
  counts differ (must be 0), and ``times_ks``, the two-sample Kolmogorov-Smirnov distance
  between the days' exchange times off the slot grid, with ``times_max_s``, their largest
  paired difference, against ``jitter_s``.

    .venv/bin/python bench/privacy.py                         # 20 slots of 2 s, ~1 min
    .venv/bin/python bench/privacy.py --intervals 8 --interval 1.0    # smoke size

The fast clock is limited by the test rig, not the gateway: the virtual lock's BLE stack
(Bumble) runs in the gateway's process and formats every HCI packet, so on a loaded machine
the busy day's exchanges lag now and then by up to a second: ``times_ks`` (the
distributions) is the figure to read, ``times_max_s`` shows the worst single slot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == _REPO / "bench":
    sys.path[0] = str(_REPO)

from gateway.sync.pacing import DEFAULT_INTERVAL_S, DEFAULT_SLOTS  # noqa: E402
from tests.support.observer import Exchange, exchanges, observe_day_in_process  # noqa: E402

EXCHANGES_PER_DAY = 86400 / DEFAULT_INTERVAL_S


def offsets(slots: list[Exchange], interval_s: float) -> list[float]:
    start = slots[0].at_s
    return [e.at_s - start - n * interval_s for n, e in enumerate(slots)]


def ks_distance(a: list[float], b: list[float]) -> float:
    points = sorted(a + b)
    return max(
        abs(sum(x <= p for x in a) / len(a) - sum(x <= p for x in b) / len(b)) for p in points
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def run(intervals: int, interval_s: float, jitter: float) -> dict[str, object]:
    jitter_s = interval_s * jitter
    with tempfile.TemporaryDirectory(prefix="threshold-privacy-") as tmp:
        options = {
            "intervals": intervals,
            "interval_s": interval_s,
            "slots": DEFAULT_SLOTS,
            "jitter_s": jitter_s,
        }
        busy, quiet = await asyncio.gather(
            observe_day_in_process(Path(tmp) / "busy", busy=True, **options),  # type: ignore[arg-type]
            observe_day_in_process(Path(tmp) / "quiet", busy=False, **options),  # type: ignore[arg-type]
        )
    b = exchanges(busy.requests)[:intervals]
    q = exchanges(quiet.requests)[:intervals]
    steady = q[1:]  # the first slot also carries the log written before the first slot
    per_exchange = sum(e.sent + e.received for e in steady) / len(steady)
    differing = sum(
        (x.routes, x.sent, x.received) != (y.routes, y.sent, y.received)
        for x, y in zip(b, q, strict=True)
    ) + abs(len(b) - len(q))
    ob, oq = offsets(b, interval_s), offsets(q, interval_s)
    p99_fast = percentile(busy.queue_delays_s, 0.99)
    p99_slots = p99_fast / interval_s
    return {
        "slots": DEFAULT_SLOTS,
        "interval_s": DEFAULT_INTERVAL_S,
        "intervals_run": intervals,
        "fast_interval_s": interval_s,
        "bytes_per_exchange": round(per_exchange),
        "bytes_per_day": round(per_exchange * EXCHANGES_PER_DAY),
        "busy_vs_idle_bytes": round(
            sum(e.sent + e.received for e in b) / sum(e.sent + e.received for e in q), 4
        ),
        "queued_entries": len(busy.queue_delays_s),
        "queue_delay_p99_slots": round(p99_slots, 2),
        "queue_delay_p99_s": round(p99_slots * DEFAULT_INTERVAL_S, 1),
        "queue_delay_p99_fast_s": round(p99_fast, 3),
        "busy_vs_idle_distance": {
            "sizes": differing,
            "times_ks": round(ks_distance(ob, oq), 3),
            "times_max_s": round(max(abs(x - y) for x, y in zip(ob, oq, strict=False)), 3),
            "jitter_s": round(jitter_s, 3),
        },
        "owner_sees_every_visit": busy.shown_kinds.count("session.closed") == len(busy.visits)
        and not busy.log_problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--intervals", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds per slot")
    parser.add_argument("--jitter", type=float, default=0.3, help="fraction of the interval")
    args = parser.parse_args()
    figures = asyncio.run(run(args.intervals, args.interval, args.jitter))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
