"""Benchmark of the gateway's access path. Prints ONE JSON line.

Everything is measured in the same run on the same machine (shared and noisy, so the ratio
is what to read):

* ``open_overhead_p50_ms`` / ``open_overhead_p99_ms``: gateway overhead per open, from the
  request reaching the handler to the unlock being handed to the lock driver (challenge
  consumption, ticket and proof verification, policy, door reservation, atomic use count and
  the durable ``granted`` + ``unlocking`` commit), over real HTTPS on loopback with the
  virtual Nuki lock behind bleak/Bumble;
* ``floor_ms``: one full ``verify_ticket`` (ticket signature + proof) plus one durable audit
  commit through the store, measured alone; ``overhead_vs_floor`` = p50 / floor (target <= 3);
* flood: 50 concurrent clients (in a separate process) post bogus tickets, each signed by an
  unknown key with its own ticket id, as fast as they can for ``--duration`` seconds, while a
  legitimate courier (a third process: a phone is a device of its own) opens every 2 s:
  ``bogus_rejected_per_s`` and ``legit_grant_p99_ms`` (the courier's POST /v1/access round
  trip, which ends once the bolt is retracted, target <= 250), and ``legit_to_unlock_p99_ms``
  (the same grants measured inside the gateway, arrival to unlock handed to the driver).
  Rate limits are raised for the run so that every bogus request is verified in full: the
  worst case for the gateway.

Usage: ``.venv/bin/python bench/access.py [--opens 60] [--duration 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from nacl.signing import SigningKey

from gateway.access.observer import AccessEvent, GrantCommitted, LoggingObserver
from gateway.app.config import load
from gateway.app.provision import init_gateway
from gateway.app.wiring import Gateway, Overrides
from gateway.clients.lan import GatewayClient, KeyPin
from gateway.trust.base64url import b64u_encode
from gateway.trust.keys import TrustAnchors
from gateway.trust.proof import ChallengeRecord, proof_message
from gateway.trust.ticket import Camera, Purpose, Ticket, sign_ticket
from gateway.trust.verification import verify_ticket

GATEWAY_ID = "gw-bench"
HIGH_RATE = 10_000_000


def _ticket(signer: SigningKey, *, gateway_id: str = GATEWAY_ID) -> tuple[str, str, SigningKey]:
    holder = SigningKey.generate()
    now = datetime.now(UTC)
    jti = "b-" + secrets.token_hex(8)
    ticket = Ticket(
        iss="owner",
        sub="courier",
        aud=gateway_id,
        jti=jti,
        iat=now - timedelta(minutes=1),
        nbf=now - timedelta(minutes=1),
        exp=now + timedelta(hours=2),
        door="front",
        purpose=Purpose.GUEST,
        cnf=bytes(holder.verify_key),
        uses=1,
        open_s=60,
        camera=Camera.PREFERRED,
    )
    return sign_ticket(ticket, bytes(signer) + bytes(signer.verify_key)), jti, holder


class OpenTimer(LoggingObserver):
    """The benchmark's observer: per grant, request arrival to unlock handed to the driver."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def observe(self, event: AccessEvent) -> None:
        super().observe(event)
        if isinstance(event, GrantCommitted) and event.since_arrival_s is not None:
            self.samples.append(event.since_arrival_s)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _floor_ms(gateway: Gateway, owner: SigningKey, rounds: int) -> float:
    assert gateway.store is not None
    anchors = TrustAnchors.of(bytes(owner.verify_key))
    token, jti, holder = _ticket(owner)
    samples = []
    for _ in range(rounds):
        now = datetime.now(UTC)
        nonce = secrets.token_bytes(32)
        proof = holder.sign(proof_message(GATEWAY_ID, nonce, jti, "open")).signature
        record = ChallengeRecord(nonce, GATEWAY_ID, now + timedelta(seconds=10))
        from zoneinfo import ZoneInfo

        zone = ZoneInfo("UTC")
        start = time.perf_counter()
        verdict = verify_ticket(
            token,
            anchors=anchors,
            gateway_id=GATEWAY_ID,
            door="front",
            now=now,
            zone=zone,
            challenge=record,
            proof=proof,
        )
        await gateway.store.append("bench.floor", {"jti": jti})
        samples.append((time.perf_counter() - start) * 1000)
        assert verdict.allowed, verdict
    return statistics.median(samples)


async def _one_open(client: GatewayClient, owner: SigningKey) -> float:
    token, jti, holder = _ticket(owner)
    start = time.perf_counter()
    reply = await client.open(
        gateway_id=GATEWAY_ID, ticket=token, jti=jti, holder=holder, door="front"
    )
    elapsed = (time.perf_counter() - start) * 1000
    await client.done(
        gateway_id=GATEWAY_ID, session_id=reply.body["session"], jti=jti, holder=holder
    )
    return elapsed


async def _legit_during_flood(
    client: GatewayClient, owner: SigningKey, duration: float
) -> list[float]:
    """Open every 2 s; measure the POST /v1/access round trip alone."""
    grants: list[float] = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        tick = time.monotonic()
        token, jti, holder = _ticket(owner)
        nonce = await client.challenge()
        body = {
            "ticket": token,
            "door": "front",
            "nonce": b64u_encode(nonce),
            "proof": b64u_encode(
                holder.sign(proof_message(GATEWAY_ID, nonce, jti, "open")).signature
            ),
        }
        start = time.perf_counter()
        reply = await client.call("POST", "/v1/access", body, expect=(201,))
        grants.append((time.perf_counter() - start) * 1000)
        await client.done(
            gateway_id=GATEWAY_ID, session_id=reply.body["session"], jti=jti, holder=holder
        )
        await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - tick)))
    return grants


async def _legit_worker(url: str, fingerprint: str, duration: float) -> None:
    """Child process: the courier's phone, a device of its own. The owner's key (to issue
    its tickets) arrives on stdin, never on the command line."""
    owner = SigningKey(bytes.fromhex(sys.stdin.readline().strip()))
    async with GatewayClient(url, fingerprint=fingerprint) as client:
        grants = await _legit_during_flood(client, owner, duration)
    print(json.dumps(grants), flush=True)


async def _flood_worker(url: str, fingerprint: str, duration: float, clients: int) -> None:
    """Child process: ``clients`` concurrent posters of bogus tickets; prints counts."""
    stranger = SigningKey.generate()
    tokens = [_ticket(stranger)[0] for _ in range(500)]
    counts = {"rejected": 0, "other": 0}
    end = time.monotonic() + duration

    async def poster(session: aiohttp.ClientSession, i: int) -> None:
        n = i
        while time.monotonic() < end:
            n += clients
            body = {
                "ticket": tokens[n % len(tokens)],
                "door": "front",
                "nonce": b64u_encode(secrets.token_bytes(32)),
                "proof": b64u_encode(secrets.token_bytes(64)),
            }
            try:
                async with session.post(url + "/v1/access", json=body) as resp:
                    await resp.read()
                    status = resp.status
            except Exception:
                counts["other"] += 1
                continue
            counts["rejected" if 400 <= status < 500 else "other"] += 1

    # The gateway takes at most 16 connections from one address (docs/api.md): the flood's
    # clients come from their own loopback addresses, 10 to an address, as phones would.
    pin = KeyPin(fingerprint)  # the gateway pin is its key's SPKI SHA-256 (docs/api.md)
    sessions = [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=pin, local_addr=(f"127.0.2.{1 + k}", 0))
        )
        for k in range((clients + 9) // 10)
    ]
    try:
        await asyncio.gather(*(poster(sessions[i // 10], i) for i in range(clients)))
    finally:
        for session in sessions:
            await session.close()
    print(json.dumps(counts), flush=True)


async def _main(
    opens: int, duration: float, floor_rounds: int, clients: int = 50
) -> dict[str, Any]:
    owner = SigningKey.generate()
    with tempfile.TemporaryDirectory(prefix="threshold-bench-") as tmp:
        result = await asyncio.to_thread(
            init_gateway,
            Path(tmp) / "gw",
            owner_pub=b64u_encode(bytes(owner.verify_key)),
            gateway_id=GATEWAY_ID,
            bind="127.0.0.1:0",
            allow_without_camera=True,
        )
        timer = OpenTimer()
        gateway = Gateway(
            load(result.config_path),
            Overrides(
                port=0,
                mdns=False,
                client_rate_per_minute=HIGH_RATE,
                ticket_rate_per_minute=HIGH_RATE,
            ),
            observer=timer,
        )
        await gateway.start()
        try:
            assert gateway.service is not None
            assert gateway.fingerprint is not None
            async with GatewayClient(gateway.url, fingerprint=gateway.fingerprint) as client:
                for _ in range(3):  # warm-up: connections, caches
                    await _one_open(client, owner)
                timer.samples.clear()
                # Interleaved, so that the floor and the overhead see the same machine load.
                floors = []
                for _ in range(opens):
                    await _one_open(client, owner)
                    floors.append(await _floor_ms(gateway, owner, floor_rounds))
                floor = statistics.median(floors)
                overhead = [s * 1000 for s in timer.samples]

                flood = await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--flood-worker",
                    gateway.url,
                    gateway.fingerprint,
                    str(duration),
                    "--flood-clients",
                    str(clients),
                    stdout=asyncio.subprocess.PIPE,
                )
                timer.samples.clear()
                legit = await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--legit-worker",
                    gateway.url,
                    gateway.fingerprint,
                    str(duration),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                legit_out, _ = await asyncio.wait_for(
                    legit.communicate(bytes(owner).hex().encode() + b"\n"), duration + 60
                )
                grants = json.loads(legit_out.decode().strip().splitlines()[-1])
                flood_overhead = [x * 1000 for x in timer.samples]
                out, _ = await asyncio.wait_for(flood.communicate(), duration + 60)
                counts = json.loads(out.decode().strip().splitlines()[-1])
        finally:
            await gateway.stop()
    p50 = statistics.median(overhead)
    return {
        "bench": "access",
        "opens": len(overhead),
        "open_overhead_p50_ms": round(p50, 3),
        "open_overhead_p99_ms": round(_pct(overhead, 0.99), 3),
        "floor_ms": round(floor, 3),
        "overhead_vs_floor": round(p50 / floor, 2),
        "flood_s": duration,
        "flood_clients": clients,
        "bogus_rejected_per_s": round(counts["rejected"] / duration, 1),
        "bogus_other": counts["other"],
        "legit_grants": len(grants),
        "legit_grant_p50_ms": round(statistics.median(grants), 2) if grants else None,
        "legit_grant_p99_ms": round(_pct(grants, 0.99), 2) if grants else None,
        # The same grants, server side: arrival to unlock handed to the driver (no BLE).
        "legit_to_unlock_p99_ms": round(_pct(flood_overhead, 0.99), 2) if flood_overhead else None,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=60)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--floor-rounds", type=int, default=5, help="floor samples per open")
    parser.add_argument("--flood-clients", type=int, default=50)
    parser.add_argument("--flood-worker", nargs=3, metavar=("URL", "FP", "SECONDS"))
    parser.add_argument("--legit-worker", nargs=3, metavar=("URL", "FP", "SECONDS"))
    args = parser.parse_args()
    if args.legit_worker:
        url, fp, seconds = args.legit_worker
        asyncio.run(_legit_worker(url, fp, float(seconds)))
        return
    if args.flood_worker:
        url, fp, seconds = args.flood_worker
        asyncio.run(_flood_worker(url, fp, float(seconds), args.flood_clients))
        return
    figures = asyncio.run(_main(args.opens, args.duration, args.floor_rounds, args.flood_clients))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
