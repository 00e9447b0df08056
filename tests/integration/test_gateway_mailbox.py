"""The owner's mail and the relay's signed time reaching a running gateway: the production
path (the wired gateway, its sync task, ``AccessMailbox``, the access service) against a real
relay on loopback, with the real store and the virtual Nuki lock."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from cloud.relay import Relay, RelayServer
from gateway.app.config import load
from gateway.app.identity import load_signing_key
from gateway.app.wiring import Gateway
from gateway.clients import cloud as cloud_client
from gateway.clients.lan import ApiProblem, GatewayClient
from gateway.sync.task import CloudSync, now_ms
from gateway.trust.approval import Approval, Decision, sign_approval
from gateway.trust.base64url import b64u_encode
from gateway.trust.owner_mail import seal_mail
from gateway.trust.revocation import sign_revocations
from gateway.trust.ticket import Purpose
from tests.support.service import (
    GATEWAY_ID,
    WAIT,
    GatewayHarness,
    Keys,
    make_gateway_dir,
    secret64,
    set_cloud,
    set_config,
    start_gateway,
)
from tests.support.tickets import revocation_list

#: The gateway's clock rule for these tests: a floor more than this above its clock means
#: the clock was set back. Small, so that a relay a minute ahead (well inside the relay's own
#: request-signature window) is enough to prove the point.
ACCESS_SKEW_S = 5
RELAY_AHEAD_S = 60


@dataclass
class CloudGateway:
    harness: GatewayHarness
    relay_offset_ms: list[int]
    relay_url: str
    gateway_public: bytes

    @property
    def sync(self) -> CloudSync:
        assert self.harness.gateway.sync is not None
        return self.harness.gateway.sync

    async def round(self) -> None:
        """Run one sync round now and wait for it (the task's own supervision loop)."""
        sync = self.sync
        sync.round_done.clear()
        sync.sync_now()
        await asyncio.wait_for(sync.round_done.wait(), WAIT)
        assert sync.status.last_error is None, sync.status.last_error

    async def mail(self, kind: str, token: str) -> None:
        sealed = seal_mail(self.gateway_public, kind, token)
        body = json.dumps({"sealed": base64.b64encode(sealed).decode()}).encode()
        async with aiohttp.ClientSession(timeout=cloud_client.TIMEOUT) as session:
            path = f"/v1/owner/gateways/{GATEWAY_ID}/mailbox"
            await cloud_client.owner_post(
                session, self.relay_url, self.harness.keys.owner, path, body
            )


@contextlib.asynccontextmanager
async def cloud_gateway(directory: Path) -> AsyncIterator[CloudGateway]:
    keys = Keys()
    offset = [0]
    relay = Relay(directory / "cloud", clock=lambda: now_ms() + offset[0])
    server = RelayServer(relay)
    relay_url = await server.start()
    gateway: Gateway | None = None
    client: GatewayClient | None = None
    try:
        config = await make_gateway_dir(directory / "gw", keys)
        set_config(config, "policy", "clock_skew_s", str(ACCESS_SKEW_S))
        set_cloud(config, relay_url, interval_s="3600")
        text = config.read_text().replace(
            '# relay_public_key = "<the relay\'s Ed25519 key, base64url>"',
            f'relay_public_key = "{b64u_encode(relay.public_key)}"',
        )
        config.write_text(text)
        gateway_key = load_signing_key(load(config).key_file)
        gateway_public = bytes(gateway_key.verify_key)
        await relay.register_gateway(GATEWAY_ID, gateway_public, bytes(keys.owner.verify_key))
        gateway = await start_gateway(config)
        client = GatewayClient(gateway.url, fingerprint=gateway.fingerprint, timeout_s=WAIT)
        harness = GatewayHarness(directory / "gw", keys, gateway, client)
        cloud = CloudGateway(harness, offset, relay_url, gateway_public)
        await asyncio.wait_for(cloud.sync.round_done.wait(), WAIT)  # the round at start
        yield cloud
    finally:
        if client is not None:
            await client.close()
        if gateway is not None:
            async with asyncio.timeout(WAIT):
                await gateway.stop()
        await server.stop()


async def refused(h: GatewayHarness, t: object, **kw: object) -> ApiProblem:
    with pytest.raises(ApiProblem) as info:
        await h.open(t, **kw)  # type: ignore[arg-type]
    return info.value


async def test_relay_time_raises_the_floor_by_at_most_the_skew(tmp_path: Path) -> None:
    """The relay's signed time, a minute ahead of the gateway's clock, raises the floor, but
    only to the local clock plus the ticket skew (issue 11, finding 1): the raise is on the
    record, with what the relay claimed, and the gateway still believes its clock, so the
    relay cannot lock anyone out. What the floor guards against is the clock going back
    later (tests/security/test_11_01_time_floor_ratchet.py has the rest)."""
    async with cloud_gateway(tmp_path) as cloud:
        h = cloud.harness
        cloud.relay_offset_ms[0] = RELAY_AHEAD_S * 1000
        before_ms = now_ms()
        await cloud.round()
        after_ms = now_ms()
        assert h.gateway.store is not None
        floor_ms = await h.gateway.store.time_floor()
        assert before_ms + ACCESS_SKEW_S * 1000 <= floor_ms <= after_ms + ACCESS_SKEW_S * 1000

        courier = h.ticket(lifetime=timedelta(seconds=90))
        session = (await h.open(courier, package_code="PKG-1")).body["session"]
        await h.done(courier, session)
        await h.wait_session(session, "closed")
        events = await h.client.owner(h.keys.owner, "GET", "/v1/owner/events?since=0&limit=1000")
        raised = [e for e in events["events"] if e["kind"] == "clock.floor_raised"]
        assert [e["body"]["floor_ms"] for e in raised][-1] == floor_ms
        claimed = raised[-1]["body"]["claimed_ms"]
        assert claimed - raised[-1]["body"]["local_ms"] > (RELAY_AHEAD_S - 10) * 1000


async def test_owner_mail_through_the_relay_revokes_and_approves(tmp_path: Path) -> None:
    async with cloud_gateway(tmp_path) as cloud:
        h = cloud.harness
        owner64 = secret64(h.keys.owner)
        now = datetime.now(UTC).replace(microsecond=0)

        survey = h.ticket(purpose=Purpose.SURVEY, subject="surveyor")
        waiting = (await h.open(survey)).body
        assert waiting["state"] == "awaiting_approval"
        until = now + timedelta(minutes=5)
        session = waiting["session"]
        approval = Approval(GATEWAY_ID, session, survey.jti, Decision.APPROVE, now, until)
        await cloud.mail("approval", sign_approval(approval, owner64))
        await cloud.round()
        await h.wait_session(waiting["session"], "open")
        await h.done(survey, waiting["session"])
        await h.wait_session(waiting["session"], "closed")

        victim = h.ticket()
        listed = revocation_list(1, aud=(GATEWAY_ID,), iat=now, until=until, jti=(victim.jti,))
        await cloud.mail("revocations", sign_revocations(listed, owner64))
        # A forged list (not the owner's key) and a later one that leaves the victim out:
        # neither takes the revocation away.
        forged = revocation_list(7, aud=(GATEWAY_ID,), iat=now, until=until)
        await cloud.mail("revocations", sign_revocations(forged, secret64(Keys().owner)))
        later = revocation_list(2, aud=(GATEWAY_ID,), iat=now, until=until, jti=("t-other",))
        await cloud.mail("revocations", sign_revocations(later, owner64))
        await cloud.round()
        problem = await refused(h, victim, package_code="PKG-1")
        assert (problem.status, problem.code) == (403, "revoked")
        other = h.ticket()
        opened = (await h.open(other, package_code="PKG-1")).body
        assert opened["state"] == "open"
