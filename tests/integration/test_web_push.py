"""Web Push end to end on loopback: a real gateway, a push service over TLS on 127.0.0.1.

The gateway trusts the push service's certificate through ``[push] ca_file`` (no test-only
switch in the product: https only). A device is subscribed the way the app does it (the
``/v1/app/push/subscribe`` route, with the session cookie, the CSRF token and the app's
origin); the test holds the subscription's private keys, decrypts what arrives and checks
the text, the one fixed size, the TTL and the VAPID signature (docs/owner-app.md,
"Notifications").
"""

from __future__ import annotations

import json
import os
import ssl
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ble.driver import LockState
from gateway.owner.acts import Role
from gateway.owner.notices import Notice, NoticeKind
from gateway.push.message import CIPHERTEXT_BYTES, PAYLOAD_BYTES
from gateway.trust.ticket import Purpose
from store.push import PushTables
from tests.support.push_service import (
    PushDevice,
    PushService,
    running_push_service,
    verify_vapid,
)
from tests.support.service import GatewayHarness, running_harness

WAIT = 15.0


def _push_settings(ca_file: Path, ttl_s: int = 300) -> Callable[[Path], None]:
    def configure(config: Path) -> None:
        text = config.read_text()
        commented = '# ca_file = "push-ca.pem"'
        assert commented in text, "the template's [push] table changed"
        text = text.replace(commented, f'ca_file = "{ca_file}"', 1)
        text = text.replace("ttl_s = 300", f"ttl_s = {ttl_s}", 1)
        config.write_text(text)

    return configure


class App:
    """The app's side: a signed-in device posting to the gateway as the page does."""

    def __init__(self, h: GatewayHarness, device_id: str, cookie: str, csrf: str) -> None:
        self.h = h
        self.device_id = device_id
        self.cookie = cookie
        self.csrf = csrf

    async def call(
        self, method: str, path: str, body: Any = None, *, csrf: bool = True
    ) -> tuple[int, Any]:
        owner_app = self.h.gateway.owner_app
        assert owner_app is not None
        context = ssl.create_default_context(cafile=str(self.h.gateway.config.api.tls_cert))
        context.check_hostname = False  # reached by address; the certificate is still checked
        headers = {
            "Cookie": f"__Host-threshold-session={self.cookie}",
            "Origin": owner_app.origin,
        }
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        url = f"https://127.0.0.1:{self.h.gateway.port}{path}"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session,
            session.request(method, url, json=body, headers=headers, ssl=context) as response,
        ):
            return response.status, await response.json()


async def signed_in(h: GatewayHarness, device_id: str, role: Role = Role.OWNER) -> App:
    """An enrolled device (its row as enrollment writes it) with a signed-in session."""
    assert h.gateway.store is not None
    assert h.gateway.owner_app is not None
    await h.gateway.store.transact(
        lambda tx: tx.devices.add_device(
            device_id, os.urandom(16), b"key", 0, role.value, device_id, tx.now_ms()
        )
    )
    cookie, session = h.gateway.owner_app.sessions.start(device_id, role)
    return App(h, device_id, cookie, session.csrf)


async def subscribe(app: App, device: PushDevice, kinds: list[str] | None = None) -> Any:
    body: dict[str, Any] = {"subscription": device.subscription()}
    if kinds is not None:
        body["kinds"] = kinds
    status, answer = await app.call("POST", "/v1/app/push/subscribe", body)
    assert status == 200, answer
    assert answer["subscribed"] is True
    return answer


@pytest.fixture
async def push(tmp_path: Path) -> AsyncIterator[PushService]:
    async with running_push_service(tmp_path / "push") as service:
        yield service


@pytest.fixture
async def h(tmp_path: Path, push: PushService) -> AsyncIterator[GatewayHarness]:
    async with running_harness(tmp_path / "gw", configure=_push_settings(push.ca_file)) as h:
        yield h


def _alert(kind: NoticeKind, text: str, session: str = "s-1") -> Notice:
    return Notice(kind, "front", session, "", text, True, time.time_ns() // 1_000_000)


async def test_a_courier_push_arrives_encrypted_padded_and_signed(
    h: GatewayHarness, push: PushService
) -> None:
    app = await signed_in(h, "d-phone")
    device = PushDevice(push.endpoint("phone"))
    settings = await subscribe(app, device)
    assert h.gateway.push is not None
    assert settings["vapid_public_key"] == h.gateway.push.signer.public_key
    # The VAPID key was made by `threshold init`, private like the other secret files.
    assert stat.S_IMODE(h.gateway.config.push.key_file.stat().st_mode) == 0o600

    t = h.ticket(subject="Cam Courier")
    reply = await h.open(t, package_code="PKG-1")
    assert reply.body["state"] in ("granted", "unlocking", "open")
    (got,) = await push.wait_for(1)

    # RFC 8291: aes128gcm, the whole body one fixed size; only the device can read it.
    assert got.headers["content-encoding"] == "aes128gcm"
    assert len(got.body) == CIPHERTEXT_BYTES
    plain = device.decrypt(got.body)
    assert len(plain) == PAYLOAD_BYTES
    message = json.loads(plain)
    assert message["body"] == "Courier at the front door"
    assert message["kind"] == "courier_arrived"
    assert message["route"] == "live"
    assert b"Cam Courier" not in plain  # who came is for the app, not the notification
    assert PushDevice(push.endpoint("other")).auth != device.auth
    with pytest.raises(Exception):  # noqa: B017, PT011 - any failure: another key cannot read it
        PushDevice(push.endpoint("other")).decrypt(got.body)

    # RFC 8030 §5.2: a short TTL, within the window (300 s).
    assert 0 < int(got.headers["ttl"]) <= 300
    assert got.headers["urgency"] == "high"  # one urgency for every kind: it tells nothing
    # RFC 8292: an ES256 JWT by the gateway's key, for this push service, within 24 h.
    claims = verify_vapid(got.headers["authorization"], h.gateway.push.signer.public_key)
    assert claims["aud"] == push.origin
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert claims["sub"] == "mailto:owner@threshold.invalid"

    await h.done(t, reply.body["session"])
    await h.wait_session(reply.body["session"], "closed")


async def test_every_push_has_the_same_size_whatever_its_text(
    h: GatewayHarness, push: PushService
) -> None:
    app = await signed_in(h, "d-phone")
    device = PushDevice(push.endpoint("phone"))
    await subscribe(app, device)
    sender = h.gateway.push
    assert sender is not None
    texts = [
        (NoticeKind.COURIER_ARRIVED, "Courier at the front door"),
        (NoticeKind.APPROVAL_NEEDED, "Surveyor waiting for your approval at the front door"),
        (NoticeKind.EMERGENCY_ENTRY, "Emergency entry at the front door"),
        (NoticeKind.CAMERA_STALLED, "Camera stopped during a visit"),
        (NoticeKind.DOOR_LEFT_OPEN, "X" * 2000),  # longer than any: shortened, same size
    ]
    for kind, text in texts:
        sender.notify(_alert(kind, text))
    received = await push.wait_for(len(texts))
    assert {len(r.body) for r in received} == {CIPHERTEXT_BYTES}
    bodies = {json.loads(device.decrypt(r.body))["kind"]: r for r in received}
    approval = json.loads(device.decrypt(bodies["approval_needed"].body))
    assert approval["route"] == "approve/s-1"
    assert {r.headers["urgency"] for r in received} == {"high"}
    assert len({r.headers["ttl"] for r in received}) <= 2  # the window, not the kind
    long = json.loads(device.decrypt(bodies["door_left_open"].body))
    assert long["body"].endswith("…")


async def test_opt_outs_per_kind_and_per_device_are_honoured(
    h: GatewayHarness, push: PushService
) -> None:
    phone, tablet = await signed_in(h, "d-phone"), await signed_in(h, "d-tablet")
    phone_device, tablet_device = (
        PushDevice(push.endpoint("phone")),
        PushDevice(push.endpoint("tablet")),
    )
    await subscribe(phone, phone_device, kinds=["approval_needed"])
    await subscribe(tablet, tablet_device)
    sender = h.gateway.push
    assert sender is not None
    # The tablet's owner changes their mind in the app: no couriers on the tablet either.
    status, answer = await tablet.call(
        "POST", "/v1/app/push/preferences", {"kinds": ["emergency_entry"]}
    )
    assert status == 200, answer
    assert answer["kinds"] == ["emergency_entry"]
    sender.notify(_alert(NoticeKind.COURIER_ARRIVED, "Courier at the front door"))
    sender.notify(_alert(NoticeKind.EMERGENCY_ENTRY, "Emergency entry at the front door"))
    sender.notify(_alert(NoticeKind.APPROVAL_NEEDED, "Surveyor waiting for your approval"))
    received = await push.wait_for(2)
    # Every decision made: two sent, four not wanted (the phone's two, the tablet's two).
    await sender.settled(lambda c: c.sent == 2 and c.skipped == 4, WAIT)
    got = sorted(
        (
            r.token,
            json.loads((phone_device if r.token == "phone" else tablet_device).decrypt(r.body))[
                "kind"
            ],
        )
        for r in push.received
    )
    assert got == [("phone", "approval_needed"), ("tablet", "emergency_entry")], received
    assert len(push.received) == 2

    # Unsubscribed: nothing more to the phone.
    status, answer = await phone.call("POST", "/v1/app/push/unsubscribe", {})
    assert status == 200
    assert answer["subscribed"] is False
    sender.notify(_alert(NoticeKind.APPROVAL_NEEDED, "Surveyor waiting for your approval"))
    sender.notify(_alert(NoticeKind.EMERGENCY_ENTRY, "Emergency entry at the front door"))
    await sender.settled(lambda c: c.sent == 3 and c.skipped == 5, WAIT)
    assert [r.token for r in push.received[2:]] == ["tablet"]
    kinds = [
        e["kind"]
        for e in (await h.client.owner(h.keys.owner, "GET", "/v1/owner/events?limit=1000"))[
            "events"
        ]
    ]
    assert kinds.count("owner.push_subscribed") == 2
    assert "owner.push_preferences" in kinds
    assert "owner.push_unsubscribed" in kinds


async def test_a_gone_subscription_is_removed_and_a_revoked_device_loses_its_own(
    h: GatewayHarness, push: PushService
) -> None:
    phone, laptop = await signed_in(h, "d-phone"), await signed_in(h, "d-laptop")
    await subscribe(phone, PushDevice(push.endpoint("phone")))
    await subscribe(laptop, PushDevice(push.endpoint("laptop")))
    push.answers["phone"] = 410
    sender = h.gateway.push
    store = h.gateway.store
    assert sender is not None
    assert store is not None
    sender.notify(_alert(NoticeKind.COURIER_ARRIVED, "Courier at the front door"))
    await push.wait_for(2)
    await sender.settled(lambda c: c.removed == 1 and c.sent == 1, WAIT)
    left = await store.read(lambda c: [s.device_id for s in PushTables(c).active()])
    assert left == ["d-laptop"]

    # Revoking a device deletes its subscription in the same transaction.
    await h.client.owner(h.keys.owner, "POST", "/v1/owner/devices/d-laptop/revoke", {})
    assert await store.read(lambda c: PushTables(c).active()) == []
    assert await store.read(lambda c: PushTables(c).of_device("d-laptop")) is None


async def test_an_http_endpoint_or_a_bad_key_is_refused(
    h: GatewayHarness, push: PushService
) -> None:
    app = await signed_in(h, "d-phone")
    device = PushDevice("http://127.0.0.1:9/push/x")
    status, answer = await app.call(
        "POST", "/v1/app/push/subscribe", {"subscription": device.subscription()}
    )
    assert (status, answer["code"]) == (400, "bad_request")
    assert "https" in answer["detail"]
    bad = PushDevice(push.endpoint("phone")).subscription()
    bad["keys"]["auth"] = "AAAA"
    status, answer = await app.call("POST", "/v1/app/push/subscribe", {"subscription": bad})
    assert (status, answer["code"]) == (400, "bad_request")
    # Without the CSRF token: refused like every other act of the app.
    status, answer = await app.call(
        "POST",
        "/v1/app/push/subscribe",
        {"subscription": PushDevice(push.endpoint("phone")).subscription()},
        csrf=False,
    )
    assert status == 403
    assert h.gateway.store is not None
    assert await h.gateway.store.read(lambda c: PushTables(c).active()) == []


async def test_a_push_past_its_window_is_dropped_not_sent_late(
    tmp_path: Path, push: PushService
) -> None:
    configure = _push_settings(push.ca_file, ttl_s=10)
    async with running_harness(tmp_path / "gw2", configure=configure) as h:
        app = await signed_in(h, "d-phone")
        await subscribe(app, PushDevice(push.endpoint("phone")))
        sender = h.gateway.push
        assert sender is not None
        # The internet is down: the push service cannot be reached (nothing listens there).
        push_port = push.port
        push.port = _closed_port()
        try:
            status, _ = await app.call(
                "POST",
                "/v1/app/push/subscribe",
                {"subscription": PushDevice(push.endpoint("phone")).subscription()},
            )
            assert status == 200
            sender.notify(_alert(NoticeKind.COURIER_ARRIVED, "Courier at the front door"))
            await sender.settled(lambda c: c.dropped_stale == 1, WAIT * 2)
        finally:
            push.port = push_port
        assert push.received == []
        assert sender.counts.sent == 0


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_hanging_push_service_never_delays_the_door(
    h: GatewayHarness, push: PushService
) -> None:
    app = await signed_in(h, "d-phone")
    await subscribe(app, PushDevice(push.endpoint("phone")))
    push.hang.add("phone")
    # The push service holds the courier's push; the door opens regardless, and promptly.
    t = h.ticket()
    started = time.perf_counter()
    reply = await h.open(t, package_code="PKG-1")
    await push.wait_for(1)
    await h.wait_lock(LockState.UNLOCKED)
    assert time.perf_counter() - started < 5.0
    # A second visit while the first push still hangs: the door still answers at once.
    await h.done(t, reply.body["session"])
    await h.wait_session(reply.body["session"], "closed")
    survey = h.ticket(purpose=Purpose.SURVEY, subject="Sam Surveyor")
    started = time.perf_counter()
    waiting = (await h.open(survey)).body
    assert waiting["state"] == "awaiting_approval"
    assert time.perf_counter() - started < 5.0
    await push.wait_for(2)
    assert h.gateway.push is not None
    assert h.gateway.push.counts.sent == 0
