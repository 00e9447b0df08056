"""The LAN API's contract: the OpenAPI document matches the router, owner routes refuse
every credential but a fresh owner signature, mDNS advertises the service, /v1/info."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

from nacl.signing import SigningKey
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from gateway.api.routes import ROUTES
from gateway.trust.base64url import b64u_encode
from gateway.trust.owner_request import OwnerAudience, sign_request
from gateway.trust.proof import proof_message
from tests.support.service import GATEWAY_ID, WAIT, GatewayHarness, harness, running_harness

__all__ = ["harness"]

OWNER_BODIES: dict[str, dict[str, str]] = {
    "/v1/owner/approvals": {"approval": "v4.public.x"},
    "/v1/owner/revocations": {"revocations": "v4.public.x"},
    "/v1/owner/lock": {"door": "front", "action": "lock"},
}


async def test_openapi_document_matches_the_router(harness: GatewayHarness) -> None:
    doc = (await harness.client.call("GET", "/v1/openapi.json")).body
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    app = harness.gateway.app
    assert app is not None
    app_routes = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    assert documented == app_routes
    # One table: the API's routes and the owner app's (gateway/api/routes.py).
    assert documented == {(r.method, r.path) for r in ROUTES}
    # And each documented route answers something other than "no such route".
    for method, path in documented:
        concrete = path.replace("/visit/{asset}", "/visit/visit.js")
        concrete = concrete.replace("{session}", "s-none").replace("{asset}", "app.js")
        concrete = concrete.replace("{invitation}", "inv-none")
        concrete = concrete.replace("{device}", "d-none").replace("{door}", "front")
        concrete = concrete.replace("{entry}", "1")
        reply = await harness.client.request(method, concrete)
        assert reply.body.get("code") != "not_found" or "{session}" in path, (method, path)


async def test_info(harness: GatewayHarness) -> None:
    info = await harness.client.info()
    assert info["gateway_id"] == GATEWAY_ID
    assert info["doors"] == ["front"]
    assert info["api_version"] == "v1"
    assert info["tls_fingerprint"] == harness.gateway.fingerprint
    assert info["public_key"] == harness.gateway.public_key
    # The supervised jobs ran once at start-up.
    jobs = harness.gateway.jobs
    assert set(jobs) == {"purge expired challenges", "checkpoint", "tls certificate renewal"}
    for job in jobs.values():
        await asyncio.wait_for(job.ran.wait(), WAIT)


async def test_owner_routes_refuse_everything_but_a_fresh_owner_signature(
    tmp_path: Path,
) -> None:
    # Every owner route is tried about eight times: more than the per-address limit allows
    # in a minute, and this test is about signatures, not the limit.
    async with running_harness(
        tmp_path / "gw", client_rate_per_minute=10**9, ticket_rate_per_minute=10**9
    ) as harness:
        await _owner_routes_refuse_everything_but_a_fresh_owner_signature(harness)


async def _owner_routes_refuse_everything_but_a_fresh_owner_signature(
    harness: GatewayHarness,
) -> None:
    client = harness.client
    owner = harness.keys.owner
    owner_routes = [r for r in ROUTES if r.owner]
    assert {r.path for r in owner_routes} == {
        "/v1/owner/events",
        "/v1/owner/sessions",
        "/v1/owner/approvals",
        "/v1/owner/revocations",
        "/v1/owner/lock",
        "/v1/owner/clock/reset",
        "/v1/owner/cameras",
        "/v1/owner/camera/live",
        "/v1/owner/camera/snapshot",
        "/v1/owner/enrollments",
        "/v1/owner/devices",
        "/v1/owner/devices/{device}/rename",
        "/v1/owner/devices/{device}/revoke",
        "/v1/owner/devices/{device}/permission",
        "/v1/owner/household-issuer",
    }
    # A courier's genuine credentials: a ticket and a valid proof of possession.
    t = harness.ticket()
    nonce = await client.challenge()
    proof = t.holder.sign(proof_message(GATEWAY_ID, nonce, t.jti, "open")).signature
    audience = await client.audience()
    elsewhere = OwnerAudience(GATEWAY_ID, "0" * 64)  # the same id, another gateway's key
    for route in owner_routes:
        body = (
            json.dumps(OWNER_BODIES.get(route.path, {})).encode() if route.method == "POST" else b""
        )
        now = int(time.time())
        target = route.path.replace("{device}", "d-000000000000")  # a device nobody enrolled

        def sig(
            key: SigningKey,
            at: int,
            method: str = route.method,
            path: str = target,
            signed: bytes = body,
            to: OwnerAudience = audience,
        ) -> dict[str, str]:
            nonce = b64u_encode(secrets.token_bytes(24))
            return sign_request(key, to, method, path, signed, at, nonce)

        attempts: dict[str, dict[str, str]] = {
            "none": {},
            "courier proof": {
                "Authorization": f"Bearer {t.token}",
                "Threshold-Owner-Signature": b64u_encode(proof),
                "Threshold-Owner-Nonce": b64u_encode(nonce),
                "Threshold-Owner-Time": str(now),
            },
            "courier key": sig(t.holder, now),
            "stale": sig(owner, now - 600),
            "future": sig(owner, now + 600),
            "for another gateway": sig(owner, now, to=elsewhere),
        }
        for what, headers in attempts.items():
            reply = await client.request(route.method, target, headers=headers, raw=body)
            assert (reply.status, reply.body.get("code")) == (401, "unauthorized"), (
                route.path,
                what,
                reply,
            )
        fresh = sig(owner, now)
        first = await client.request(route.method, target, headers=fresh, raw=body)
        assert first.status != 401, (route.path, first)
        replay = await client.request(route.method, target, headers=fresh, raw=body)
        assert (replay.status, replay.body.get("code")) == (401, "unauthorized"), route.path
        # A signature over another body does not carry over.
        if body:
            other = await client.request(
                route.method, target, headers=sig(owner, now), raw=body + b" "
            )
            assert other.status == 401, route.path


async def test_owner_lock_and_unlock_are_recorded(harness: GatewayHarness) -> None:
    owner = harness.keys.owner
    reply = await harness.client.owner(
        owner, "POST", "/v1/owner/lock", {"door": "front", "action": "unlock"}
    )
    assert reply["lock"] == "unlocked"
    reply = await harness.client.owner(
        owner, "POST", "/v1/owner/lock", {"door": "front", "action": "lock"}
    )
    assert reply["lock"] == "locked"
    events = (await harness.client.owner(owner, "GET", "/v1/owner/events"))["events"]
    kinds = [e["kind"] for e in events]
    assert (
        kinds.index("owner.unlock") < kinds.index("owner.unlock.done") < kinds.index("owner.lock")
    )
    sessions = await harness.client.owner(owner, "GET", "/v1/owner/sessions")
    assert sessions == {"sessions": []}


async def test_mdns_advertises_the_service(tmp_path: Path) -> None:
    # A name of its own: another test run on the same machine may be announcing gw-test.
    gateway_id = f"gw-mdns-{secrets.token_hex(4)}"
    async with running_harness(tmp_path / "gw", mdns=True, gateway_id=gateway_id) as h:
        zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        try:
            info = AsyncServiceInfo(
                "_threshold._tcp.local.", f"{gateway_id}._threshold._tcp.local."
            )
            found = await asyncio.wait_for(info.async_request(zc.zeroconf, 3000), WAIT)
            assert found
            props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            assert props["id"] == gateway_id
            assert props["fp"] == h.gateway.fingerprint
            assert props["api"] == "v1"
            assert info.port == h.gateway.port
        finally:
            await zc.async_close()


async def test_plain_http_only_when_configured(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw", settings={("api", "tls"): "false"}) as h:
        assert h.url.startswith("http://")
        assert (await h.client.info())["tls_fingerprint"] is None
    async with running_harness(tmp_path / "gw2") as h:
        assert h.url.startswith("https://")


async def test_garbage_gets_a_problem_never_a_500(tmp_path: Path) -> None:
    import random

    rng = random.Random(20261124)

    def junk_value(depth: int = 0) -> object:
        pick = rng.randrange(8 if depth < 3 else 5)
        if pick == 0:
            return None
        if pick == 1:
            return rng.random() < 0.5
        if pick == 2:
            return rng.randrange(-(2**70), 2**70)
        if pick == 3:
            return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(40)))
        if pick == 4:
            return "v4.public." + b64u_encode(rng.randbytes(rng.randrange(120)))
        if pick == 5:
            return [junk_value(depth + 1) for _ in range(rng.randrange(4))]
        return {str(junk_value(3))[:20]: junk_value(depth + 1) for _ in range(rng.randrange(4))}

    fields = [
        "ticket",
        "door",
        "nonce",
        "proof",
        "package_code",
        "revocations",
        "approval",
        "action",
    ]
    async with running_harness(
        tmp_path / "gw", client_rate_per_minute=10**9, ticket_rate_per_minute=10**9
    ) as h:
        for route in ROUTES:
            path = route.path.replace("{session}", "s-" + "0" * 24)
            for _ in range(25):
                kind = rng.randrange(3)
                if kind == 0:
                    raw = rng.randbytes(rng.randrange(200))
                elif kind == 1:
                    raw = json.dumps(junk_value()).encode()
                else:
                    raw = json.dumps(
                        {f: junk_value() for f in rng.sample(fields, rng.randrange(1, 5))}
                    ).encode()
                reply = await h.client.request(route.method, path, raw=raw)
                assert reply.status < 500, (route.path, raw, reply)
                if reply.status >= 400:
                    assert isinstance(reply.body.get("code"), str), (route.path, reply)
                    assert "Traceback" not in json.dumps(reply.body)
        assert (await h.client.info())["gateway_id"] == GATEWAY_ID


async def test_an_oversized_ticket_is_403_bad_token_like_any_malformed_one(
    harness: GatewayHarness,
) -> None:
    """docs/api.md, "Problem codes": a ticket's refusal is 403 whatever the check, size
    included (it was 400 for size alone); an owner document that does not verify is 400."""
    body = {
        "ticket": "v4.public." + "A" * 5000,
        "door": "front",
        "nonce": b64u_encode(bytes(32)),
        "proof": b64u_encode(bytes(64)),
    }
    reply = await harness.client.request("POST", "/v1/access", raw=json.dumps(body).encode())
    assert reply.status == 403
    assert reply.body["code"] == "bad_token"
    small = await harness.client.request(
        "POST", "/v1/access", raw=json.dumps({**body, "ticket": "v4.public.AAAA"}).encode()
    )
    assert (small.status, small.body["code"]) == (403, "bad_token")
    document = await harness.client.request(
        "POST",
        "/v1/access",
        raw=json.dumps(
            {**body, "ticket": "v4.public.AAAA", "revocations": "v4.public.AA"}
        ).encode(),
    )
    assert (document.status, document.body["code"]) == (400, "bad_token")
