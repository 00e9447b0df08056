"""The LAN API's contract: the OpenAPI document matches the router, owner routes refuse
every credential but a fresh owner signature, mDNS advertises the service, /v1/info."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

from gateway.proof import proof_message
from nacl.signing import SigningKey
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from gateway.api import ROUTES
from gateway.config import b64u_encode
from gateway.owner_auth import sign_request
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
    app_routes = {
        (r.method, r.resource.canonical)
        for r in harness.gateway._runner.app.router.routes()  # type: ignore[union-attr]
        if r.resource is not None and r.method != "HEAD"
    }
    assert documented == app_routes
    assert documented == {(r.method, r.path) for r in ROUTES}
    # And each documented route answers something other than "no such route".
    for method, path in documented:
        concrete = path.replace("{session}", "s-none")
        reply = await harness.client.request(method, concrete)
        assert reply.body.get("code") != "not_found" or "{session}" in path, (method, path)


async def test_info(harness: GatewayHarness) -> None:
    info = await harness.client.info()
    assert info["gateway_id"] == GATEWAY_ID
    assert info["doors"] == ["front"]
    assert info["api_version"] == "v1"
    assert info["tls_fingerprint"] == harness.gateway.fingerprint
    assert info["public_key"] == harness.gateway.public_key


async def test_owner_routes_refuse_everything_but_a_fresh_owner_signature(
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
    }
    # A courier's genuine credentials: a ticket and a valid proof of possession.
    t = harness.ticket()
    nonce = await client.challenge()
    proof = t.holder.sign(proof_message(GATEWAY_ID, nonce, t.jti, "open")).signature
    for route in owner_routes:
        body = (
            json.dumps(OWNER_BODIES.get(route.path, {})).encode() if route.method == "POST" else b""
        )
        now = int(time.time())

        def sig(
            key: SigningKey,
            at: int,
            method: str = route.method,
            path: str = route.path,
            signed: bytes = body,
        ) -> dict[str, str]:
            return sign_request(key, method, path, signed, at, b64u_encode(secrets.token_bytes(24)))

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
        }
        for what, headers in attempts.items():
            reply = await client.request(route.method, route.path, headers=headers, raw=body)
            assert (reply.status, reply.body.get("code")) == (401, "unauthorized"), (
                route.path,
                what,
                reply,
            )
        fresh = sig(owner, now)
        first = await client.request(route.method, route.path, headers=fresh, raw=body)
        assert first.status != 401, (route.path, first)
        replay = await client.request(route.method, route.path, headers=fresh, raw=body)
        assert (replay.status, replay.body.get("code")) == (401, "unauthorized"), route.path
        # A signature over another body does not carry over.
        if body:
            other = await client.request(
                route.method, route.path, headers=sig(owner, now), raw=body + b" "
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
    async with running_harness(tmp_path / "gw", mdns=True) as h:
        zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        try:
            info = AsyncServiceInfo(
                "_threshold._tcp.local.", f"{GATEWAY_ID}._threshold._tcp.local."
            )
            found = await asyncio.wait_for(info.async_request(zc.zeroconf, 3000), WAIT)
            assert found
            props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            assert props["id"] == GATEWAY_ID
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
