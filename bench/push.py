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
  the same service on a kept-alive connection, started from the gateway's event loop at the
  same moment (the same ``GrantCommitted``), so it meets the same load (the unlock's Bluetooth
  exchange with the virtual lock, whose Bumble radio shares the loop); ``push_vs_reference``
  is the ratio of the two p99s (what the gateway's push path adds to a bare POST).

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
from tests.support.push_service import (
    PushDevice,
    PushService,
    Received,
    push_service_process,
)
from tests.support.service import Keys, make_ticket

GATEWAY_ID = "gw-test"  # make_ticket's audience


class CommitTimes:
    """The access observer of the run: when each grant was committed; and, once
    :meth:`reference_to` is set, the reference POST started at that same moment."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._post: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    def reference_to(self, post: Any) -> None:
        self._post = post

    def observe(self, event: AccessEvent) -> None:
        if isinstance(event, GrantCommitted):
            self.at[event.session] = time.perf_counter()
            if self._post is not None:
                task = asyncio.get_running_loop().create_task(self._post(event.session))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)


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
            reply = await client.open(
                gateway_id=GATEWAY_ID,
                ticket=t.token,
                jti=t.jti,
                holder=t.holder,
                door=t.door,
                package_code="PKG-1",
            )
            session = reply.body["session"]
            got = await _push_of(push, device, session)
            assert len(got.body) == CIPHERTEXT_BYTES
            arrived[session] = got.at
            await _done(client, session, t)
            await service.wait_for(lambda s=session: _closed(service, s), 10)
    return arrived


async def _push_of(push: PushService, device: PushDevice, session: str) -> Received:
    """The push the gateway sent for ``session`` (the references arrive in between)."""
    seen = 0
    async with asyncio.timeout(10.0):
        while True:
            got = await push.wait_for(seen + 1, 10.0)
            for r in got[seen:]:
                if r.token == "bench" and json.loads(device.decrypt(r.body))["tag"] == session:
                    return r
            seen = len(got)


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


def _plain_post(gateway: Gateway, push: PushService, http: aiohttp.ClientSession) -> Any:
    """The reference: a plain HTTPS POST of the push's size to the same service, from the
    gateway's event loop, on a kept-alive connection (a session of its own)."""
    body = os.urandom(CIPHERTEXT_BYTES)

    async def post(session: str) -> None:
        async with http.post(push.endpoint(f"reference-{session}"), data=body) as response:
            await response.read()

    return post


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
                context = client_ssl(gateway.config.push)
                async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=context)
                ) as http:
                    commits.reference_to(_plain_post(gateway, push, http))
                    # Warm: both connections opened, the code paths run once.
                    await _visits(gateway, keys, push, device, 3)
                    push.received.clear()
                    arrived = await _visits(gateway, keys, push, device, visits)
                    await push.wait_for(2 * visits, 30.0)  # the last reference too
            finally:
                await gateway.stop()
    times = [(arrived[s] - commits.at[s]) * 1000 for s in arrived]
    refs = {r.token.removeprefix("reference-"): r.at for r in push.received}
    reference = [(refs[s] - commits.at[s]) * 1000 for s in arrived if s in refs]
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
