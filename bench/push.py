"""Benchmark of Web Push. Prints ONE JSON line (docs/owner-app.md, "Notifications", has the
figures).

Everything in the same run, on the same (shared, noisy) machine: a real gateway (the virtual
Nuki lock through bleak over Bumble, SQLite, HTTPS on loopback) with one owner device
subscribed, and a push service over TLS on 127.0.0.1 (``tests.support.push_service``) in a
process of its own, which takes the arrival times (``time.perf_counter``: one monotonic clock
for every process), so the gateway's busy event loop does not delay the measuring end:

* ``push_ms_p50`` / ``push_ms_p99``: from the grant's commit (the access observer's
  ``GrantCommitted``, right after the durable ``granted`` transaction) to the push request
  arriving at the push service (it left the gateway: the loopback adds microseconds), over
  ``--visits`` courier visits one at a time (target p99 <= 500). It includes the notice, the
  sender's queue, the store read of the subscriptions, the padding, the RFC 8291 encryption,
  the VAPID header (signed once, then reused) and the HTTPS POST on a kept-alive connection;
* ``reference_ms_p99``: a plain HTTPS POST of the same size (the push's ciphertext length) to
  the same service on the same kind of connection, from this process; ``push_vs_reference``
  is the ratio of the two p99s (what the gateway adds to a bare POST).

:func:`measure_push` is the same measurement as an async function (``bench/remote.py``
includes ``push_ms_p99`` in its own line with it).

Usage: ``.venv/bin/python bench/push.py [--visits 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from gateway.access.observer import AccessEvent, GrantCommitted
from gateway.app.config import load
from gateway.app.provision import init_gateway
from gateway.app.wiring import Gateway, Overrides
from gateway.clients.lan import ApiProblem, GatewayClient
from gateway.owner.acts import Role
from gateway.push.message import CIPHERTEXT_BYTES
from gateway.push.sender import client_ssl
from tests.support.push_service import PushDevice, PushService, push_service_process
from tests.support.service import Keys, make_ticket

GATEWAY_ID = "gw-test"  # make_ticket's audience


class CommitTimes:
    """The access observer of the run: when each grant was committed."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def observe(self, event: AccessEvent) -> None:
        if isinstance(event, GrantCommitted):
            self.at[event.session] = time.perf_counter()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _gateway(directory: Path, keys: Keys, ca_file: Path, commits: CommitTimes) -> Gateway:
    result = await asyncio.to_thread(
        init_gateway,
        directory,
        owner_pub=keys.owner_pub,
        gateway_id=GATEWAY_ID,
        bind="127.0.0.1:0",
        allow_without_camera=True,
    )
    text = result.config_path.read_text()
    text = text.replace('# ca_file = "push-ca.pem"', f'ca_file = "{ca_file}"', 1)
    result.config_path.write_text(text)
    gateway = Gateway(
        load(result.config_path),
        Overrides(port=0, mdns=False, metrics_port=0),
        observer=commits,
    )
    await gateway.start()
    return gateway


async def _subscribe(gateway: Gateway, device: PushDevice) -> None:
    assert gateway.store is not None
    assert gateway.owner_app is not None
    await gateway.store.transact(
        lambda tx: tx.devices.add_device(
            "d-bench", os.urandom(16), b"key", 0, "owner", "bench", tx.now_ms()
        )
    )
    _cookie, session = gateway.owner_app.sessions.start("d-bench", Role.OWNER)
    await gateway.owner_app.push_subscribe(session, device.subscription(), ["courier_arrived"])


async def _visits(
    gateway: Gateway, keys: Keys, push: PushService, device: PushDevice, count: int
) -> dict[str, float]:
    """``count`` courier visits, one at a time; the arrival of each one's push, by session."""
    service = gateway.service
    assert service is not None
    arrived: dict[str, float] = {}
    async with GatewayClient(gateway.url, fingerprint=gateway.fingerprint) as client:
        for _ in range(count):
            t = make_ticket(keys.owner)
            before = len(push.received)
            reply = await client.open(
                gateway_id=GATEWAY_ID,
                ticket=t.token,
                jti=t.jti,
                holder=t.holder,
                door=t.door,
                package_code="PKG-1",
            )
            session = reply.body["session"]
            got = (await push.wait_for(before + 1, 10.0))[-1]
            tag = json.loads(device.decrypt(got.body))["tag"]
            assert tag == session, (tag, session)
            assert len(got.body) == CIPHERTEXT_BYTES
            arrived[session] = got.at
            await _done(client, session, t)
            await service.wait_for(lambda s=session: _closed(service, s), 10)
    return arrived


async def _done(client: GatewayClient, session: str, t: Any) -> None:
    """End the visit. On this shared 2-core machine the virtual lock's radio (Bumble, in the
    same event loop) can stall the loop long enough for the done proof's challenge (10 s)
    to lapse; that is the test lock's cost, not the push's: ask again."""
    for attempt in range(3):
        try:
            await client.done(gateway_id=GATEWAY_ID, session_id=session, jti=t.jti, holder=t.holder)
            return
        except ApiProblem as exc:
            if exc.code != "challenge_expired" or attempt == 2:
                raise


def _closed(service: Any, session: str) -> bool:
    view = service.view(session)
    return view is not None and view.state == "closed"


async def _reference(gateway: Gateway, push: PushService, count: int) -> list[float]:
    """A plain HTTPS POST of the push's size, on a kept-alive connection, ``count`` times."""
    context = client_ssl(gateway.config.push)
    body = os.urandom(CIPHERTEXT_BYTES)
    times: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        for i in range(count + 1):
            before = len(push.received)
            started = time.perf_counter()
            async with http.post(push.endpoint("reference"), data=body) as response:
                await response.read()
            got = (await push.wait_for(before + 1, 10.0))[-1]
            if i:  # the first one opens the connection (the gateway's was opened before too)
                times.append((got.at - started) * 1000)
    return times


async def measure_push(visits: int = 200) -> dict[str, float]:
    """``push_ms_p50``, ``push_ms_p99``, ``reference_ms_p99``, ``push_vs_reference``."""
    commits = CommitTimes()
    keys = Keys()
    with tempfile.TemporaryDirectory(prefix="threshold-bench-push-") as tmp:
        root = Path(tmp)
        async with push_service_process(root / "push") as push:
            gateway = await _gateway(root / "gw", keys, push.ca_file, commits)
            try:
                device = PushDevice(push.endpoint("bench"))
                await _subscribe(gateway, device)
                await _visits(gateway, keys, push, device, 3)  # warm: the connection, the JIT
                push.received.clear()
                arrived = await _visits(gateway, keys, push, device, visits)
                reference = await _reference(gateway, push, visits)
            finally:
                await gateway.stop()
    times = [(arrived[s] - commits.at[s]) * 1000 for s in arrived]
    p99, ref_p99 = _p(times, 0.99), _p(reference, 0.99)
    return {
        "push_ms_p50": round(_p(times, 0.5), 2),
        "push_ms_p99": round(p99, 2),
        "reference_ms_p99": round(ref_p99, 2),
        "push_vs_reference": round(p99 / ref_p99, 2) if ref_p99 > 0 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=200)
    args = parser.parse_args()
    figures = asyncio.run(measure_push(args.visits))
    print(json.dumps({"visits": args.visits, "payload_bytes": CIPHERTEXT_BYTES, **figures}))


if __name__ == "__main__":
    main()
