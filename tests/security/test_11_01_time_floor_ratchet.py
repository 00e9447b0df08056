"""Issue 11, finding 1: a relay ratchets the time floor into the future, and after a restart
every ticket is refused, emergency included.

The attack: a relay (or whoever holds the relay key the gateway pins) signs a time ten years
ahead and answers every upload ``503`` without ``Retry-After``. The floor's ceiling used to
be max(floor, local clock) + 5 min, so once ahead it climbed 5 min per round, and the 503
made the gateway come back every ~2 s (its port probe found the relay up). After a restart
with no relay, a valid ticket got ``clock_untrusted`` and a valid emergency ticket
``expired``.

Now: outside time raises the floor to at most the local clock plus the ticket skew, whatever
the floor already is; a failed round is not retried sooner than ``MIN_RETRY_S``; an emergency
ticket is never refused because of the clock; a floor found far ahead at start (left by the
old rule, or a clock set back) is reported loudly, and the owner resets it with a signed,
recorded act. Against the real gateway (HTTPS, the virtual Nuki lock over Bumble, SQLite),
the real sync task, and a lying relay on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from nacl.signing import SigningKey

from ble.driver import LockState
from cloud import wire
from gateway.app.wiring import Gateway
from gateway.clients.lan import ApiProblem, GatewayClient
from gateway.sync.schedule import MIN_RETRY_S
from gateway.sync.task import SyncUnavailable, now_ms
from gateway.trust.base64url import b64u_encode
from gateway.trust.ticket import Purpose
from groundwork.files import write_file
from tests.support.cli import run_cli
from tests.support.service import (
    WAIT,
    GatewayHarness,
    IssuedTicket,
    Keys,
    make_gateway_dir,
    set_cloud,
    set_config,
    start_gateway,
)

SKEW_MS = 120_000  # [policy] clock_skew_s, the default
RELAY_AHEAD_MS = 10 * 365 * 86_400_000
ROUNDS = 40
COMMENTED_URL = '# url = "https://relay.example:8443"'


class LyingRelay:
    """Signs a time far ahead for every nonce; answers every upload 503, no Retry-After."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.times_signed = 0
        self.uploads_refused = 0
        self._runner: web.AppRunner | None = None

    async def _time(self, request: web.Request) -> web.Response:
        nonce = request.query["nonce"]
        at = now_ms() + RELAY_AHEAD_MS
        signature = self.key.sign(wire.time_message("relay-evil", at, nonce)).signature
        self.times_signed += 1
        return web.json_response(
            {
                "relay_id": "relay-evil",
                "time_ms": at,
                "nonce": nonce,
                "signature": wire.b64(signature),
            }
        )

    async def _mailbox(self, request: web.Request) -> web.Response:
        return web.json_response({"items": []})

    async def _entries(self, request: web.Request) -> web.Response:
        await request.read()
        self.uploads_refused += 1
        return web.json_response({"code": "busy"}, status=503)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v1/time", self._time)
        app.router.add_get("/v1/gateways/{gateway}/mailbox", self._mailbox)
        app.router.add_post("/v1/gateways/{gateway}/entries", self._entries)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@contextlib.asynccontextmanager
async def running(config: Path, keys: Keys) -> AsyncIterator[GatewayHarness]:
    gateway: Gateway = await start_gateway(config)
    client = GatewayClient(gateway.url, fingerprint=gateway.fingerprint, timeout_s=WAIT)
    try:
        yield GatewayHarness(config.parent, keys, gateway, client)
    finally:
        await client.close()
        async with asyncio.timeout(WAIT):
            await gateway.stop()


async def floor_ms(h: GatewayHarness) -> int:
    assert h.gateway.store is not None
    return await h.gateway.store.time_floor()


async def events(h: GatewayHarness) -> list[dict[str, Any]]:
    path = "/v1/owner/events?since=0&limit=1000"
    found: list[dict[str, Any]] = (await h.client.owner(h.keys.owner, "GET", path))["events"]
    return found


async def visit(h: GatewayHarness, ticket: IssuedTicket, **kw: Any) -> dict[str, Any]:
    """Open, check the bolt moved, say done, wait for the relock: one whole visit."""
    reply = await h.open(ticket, **kw)
    assert reply.status == 201, reply.body
    await h.wait_lock(LockState.UNLOCKED)
    await h.done(ticket, reply.body["session"])
    await h.wait_lock(LockState.LOCKED)
    body: dict[str, Any] = reply.body
    return body


async def test_a_lying_relay_cannot_ratchet_the_floor_and_the_door_opens_after_a_restart(
    tmp_path: Path,
) -> None:
    keys = Keys()
    relay = LyingRelay()
    url = await relay.start()
    config = await make_gateway_dir(tmp_path / "gw", keys)
    set_cloud(config, url, interval_s="3600")
    # The gateway pins the relay's key: the attacker holds it (or is the relay).
    config.write_text(
        config.read_text().replace(
            '# relay_public_key = "<the relay\'s Ed25519 key, base64url>"',
            f'relay_public_key = "{b64u_encode(bytes(relay.key.verify_key))}"',
        )
    )
    try:
        async with running(config, keys) as h:
            sync = h.gateway.sync
            assert sync is not None
            await asyncio.wait_for(sync.round_done.wait(), WAIT)  # the round at start
            status = sync.status
            assert status.last_error == "relay answered 503"
            # The 503 came without Retry-After: the next round is still not sooner than the
            # minimum interval (it used to be a jittered second, then a probe every 2 s).
            assert status.next_attempt_ms is not None
            assert status.last_error_ms is not None
            assert status.next_attempt_ms - status.last_error_ms >= MIN_RETRY_S * 1000
            # Round after round of signed time ten years ahead: the floor never passes the
            # local clock plus the skew.
            for _ in range(ROUNDS):
                with pytest.raises(SyncUnavailable):
                    await sync.sync_once()
                assert await floor_ms(h) <= now_ms() + SKEW_MS
            assert relay.times_signed > ROUNDS
            # Every raise is on the record, with what the relay claimed.
            raised = [e for e in await events(h) if e["kind"] == "clock.floor_raised"]
            assert raised
            assert all(e["body"]["floor_ms"] <= e["body"]["local_ms"] + SKEW_MS for e in raised)
            assert all(e["body"]["claimed_ms"] > e["body"]["local_ms"] + SKEW_MS for e in raised)
    finally:
        await relay.stop()

    # The relay is gone; the gateway restarts without it.
    config.write_text(config.read_text().replace(f'url = "{url}"', COMMENTED_URL))
    async with running(config, keys) as h:
        assert h.gateway.sync is None
        assert await floor_ms(h) <= now_ms() + SKEW_MS
        await visit(h, h.ticket(), package_code="PKG-1")  # was clock_untrusted
        emergency = h.ticket(purpose=Purpose.EMERGENCY, subject="fire brigade")
        await visit(h, emergency)  # was expired
        alarms = [e["body"]["reason"] for e in await events(h) if e["kind"] == "alarm.raised"]
        assert any(reason.startswith("emergency") for reason in alarms)


async def test_a_floor_found_far_ahead_is_reported_and_only_the_owners_signed_reset_moves_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What the old rule left behind (or a clock set back): the floor 109 minutes ahead. At
    start it is reported (ERROR line, audit entry, ``threshold status``, the owner told); a
    time-bound ticket fails closed, an emergency one opens with the clock alarm; unsigned or
    wrongly signed resets are refused; the owner's signed reset sets the floor back, on the
    record, and the door works again."""
    keys = Keys()
    config = await make_gateway_dir(tmp_path / "gw", keys)
    ahead_ms = 109 * 60_000
    async with running(config, keys) as h:
        assert h.gateway.store is not None
        await h.gateway.store.append(
            "clock.floor_raised", {"floor_ms": now_ms() + ahead_ms}, now_ms() + ahead_ms
        )
    planted = now_ms() + ahead_ms  # an upper bound of what was written

    caplog.set_level(logging.WARNING)
    async with running(config, keys) as h:
        stuck = await floor_ms(h)
        assert now_ms() + SKEW_MS < stuck <= planted
        loud = [
            r
            for r in caplog.records
            if r.levelno == logging.ERROR and "time floor" in r.getMessage()
        ]
        assert loud, "no ERROR line for the floor"
        found = [e for e in await events(h) if e["kind"] == "clock.floor_ahead"]
        assert [e["body"]["floor_ms"] for e in found] == [stuck]
        assert found[0]["body"]["ahead_s"] > (ahead_ms - SKEW_MS) // 1000
        assert any("owner attention" in r.getMessage() for r in caplog.records)

        # threshold status says so, and what to do.
        assert h.gateway.metrics_url is not None
        port = h.gateway.metrics_url.rsplit(":", 1)[1].split("/")[0]
        set_config(config, "metrics", "bind", f'"127.0.0.1:{port}"')
        status = await asyncio.to_thread(run_cli, "status", "--config", str(config))
        assert status.returncode == 1, status.stdout + status.stderr
        assert "FIX  clock: the time floor is 109 min ahead" in status.stdout
        assert "threshold owner clock reset" in status.stdout

        # Fail closed for a time-bound ticket; the emergency opens, with the clock alarm.
        with pytest.raises(ApiProblem) as refused:
            await h.open(h.ticket(), package_code="PKG-1")
        assert refused.value.code == "clock_untrusted"
        await visit(h, h.ticket(purpose=Purpose.EMERGENCY, subject="ambulance"))
        alarms = [e["body"]["reason"] for e in await events(h) if e["kind"] == "alarm.raised"]
        assert any(reason.startswith("emergency+clock_untrusted") for reason in alarms)

        # Nobody but the owner resets it: unsigned, or signed by a household member's,
        # an issuer's or a holder's key, it is refused and the floor stays.
        unsigned = await h.client.request("POST", "/v1/owner/clock/reset")
        assert (unsigned.status, unsigned.body["code"]) == (401, "unauthorized")
        member = SigningKey.generate()
        with pytest.raises(ApiProblem) as wrong:
            await h.client.owner(member, "POST", "/v1/owner/clock/reset")
        assert (wrong.value.status, wrong.value.code) == (401, "unauthorized")
        assert await floor_ms(h) == stuck

        # The owner's signed reset, from the CLI as the status line says.
        owner_key = tmp_path / "owner.key"
        write_file(
            owner_key,
            (b64u_encode(bytes(keys.owner) + bytes(keys.owner.verify_key)) + "\n").encode(),
        )
        fingerprint = h.gateway.fingerprint
        assert fingerprint is not None
        common = ("--gateway", h.url, "--owner-key", str(owner_key))
        pin = ("--pin-fingerprint", fingerprint)
        before = now_ms()
        reset = await asyncio.to_thread(run_cli, "owner", "clock", "reset", *common, *pin)
        assert reset.returncode == 0, reset.stdout + reset.stderr
        assert "time floor reset from" in reset.stdout
        after = now_ms()
        assert before <= await floor_ms(h) <= after
        resets = [e for e in await events(h) if e["kind"] == "clock.floor_reset"]
        assert len(resets) == 1
        assert resets[0]["body"]["old_floor_ms"] == stuck
        assert before <= resets[0]["body"]["new_floor_ms"] <= after
        assert resets[0]["verified"] is True

        await visit(h, h.ticket(), package_code="PKG-1")
        again = await h.client.owner(h.keys.owner, "POST", "/v1/owner/clock/reset")
        assert again["reset"] is False
        assert len([e for e in await events(h) if e["kind"] == "clock.floor_reset"]) == 1

    # And it stays reset across a restart: nothing is reported any more.
    caplog.clear()
    async with running(config, keys) as h:
        assert not [e for e in await events(h) if e["kind"] == "clock.floor_ahead"][1:]
        assert not [r for r in caplog.records if "time floor" in r.getMessage()]
        await visit(h, h.ticket(), package_code="PKG-1")
