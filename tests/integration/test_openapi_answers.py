"""docs/api.md and docs/cloud.md: the OpenAPI documents describe every JSON answer body (none
is a bare ``{"type": "object"}``), and what the gateway and the relay send matches what they
describe, held against the live answers of a real delivery and a real sync."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp

from gateway.api.owner_app import COOKIE, CSRF_HEADER
from gateway.clients.cloud import owner_get, owner_post
from gateway.clients.lan import KeyPin
from gateway.owner.acts import Role
from gateway.trust.ticket import Purpose
from store.transaction import StoreTransaction
from tests.support.cloud import (
    GATEWAY_ID,
    new_parties,
    open_sealed_store,
    start_relay,
    sync_for,
)
from tests.support.json_schema import (
    answer_schema,
    every_success_schema_says_something,
    problems,
)
from tests.support.relay_attack import raw_request
from tests.support.service import GatewayHarness, harness

__all__ = ["harness"]


async def test_the_gateway_answers_what_its_document_says(harness: GatewayHarness) -> None:
    client = harness.client
    doc = (await client.call("GET", "/v1/openapi.json")).body
    assert every_success_schema_says_something(doc) == []

    def holds(value: Any, method: str, path: str, code: int) -> None:
        found = problems(value, answer_schema(doc, method, path, code), doc)
        assert found == [], (method, path, found)

    holds(doc, "GET", "/v1/openapi.json", 200)
    info = await client.info()
    holds(info, "GET", "/v1/info", 200)
    # The checker is not vacuous: a wrong answer is caught.
    assert problems({**info, "doors": "front"}, answer_schema(doc, "GET", "/v1/info", 200), doc)
    holds(
        (await client.call("POST", "/v1/challenges", expect=(201,))).body,
        "POST",
        "/v1/challenges",
        201,
    )
    t = harness.ticket(purpose=Purpose.DELIVERY, package_codes=("PKG-1",))
    opened = await harness.open(t, package_code="PKG-1")
    holds(opened.body, "POST", "/v1/access", 201)
    session_id = opened.body["session"]
    holds(await client.session(session_id), "GET", "/v1/access/{session}", 200)
    done = await harness.done(t, session_id)
    assert done["receipt"] is not None
    holds(done, "POST", "/v1/access/{session}/done", 200)
    owner = harness.keys.owner
    events = await client.owner(owner, "GET", "/v1/owner/events?since=0&limit=100")
    holds(events, "GET", "/v1/owner/events", 200)
    sessions = await client.owner(owner, "GET", "/v1/owner/sessions")
    holds(sessions, "GET", "/v1/owner/sessions", 200)
    locked = await client.owner(
        owner, "POST", "/v1/owner/lock", {"door": "front", "action": "lock"}
    )
    holds(locked, "POST", "/v1/owner/lock", 200)
    reset = await client.owner(owner, "POST", "/v1/owner/clock/reset")
    holds(reset, "POST", "/v1/owner/clock/reset", 200)


async def test_the_owner_app_answers_what_its_document_says(harness: GatewayHarness) -> None:
    """Every JSON route of the owner app (docs/owner-app.md) against its schema. The passkey
    ceremonies themselves (enroll, sign in, an act) need an authenticator: their answers are
    held in tests/browser/test_owner_app.py; here the devices are recorded as an enrollment
    records them and signed in through the app's own sessions."""
    client = harness.client
    doc = (await client.call("GET", "/v1/openapi.json")).body
    app = harness.gateway.owner_app
    assert app is not None

    def holds(value: Any, method: str, path: str, code: int = 200) -> None:
        found = problems(value, answer_schema(doc, method, path, code), doc)
        assert found == [], (method, path, found)

    root = harness.keys.owner
    made = await client.owner(
        root, "POST", "/v1/owner/enrollments", {"role": "owner", "name": "Ada"}, expect=(201,)
    )
    holds(made, "POST", "/v1/owner/enrollments", 201)
    origin = {"Origin": app.origin}
    token = str(made["link"]).split("#enroll=", 1)[1]
    enroll = await client.call("POST", "/v1/app/enroll/options", {"token": token}, headers=origin)
    holds(enroll.body, "POST", "/v1/app/enroll/options")
    signin = await client.call("POST", "/v1/app/signin/options", headers=origin)
    holds(signin.body, "POST", "/v1/app/signin/options")

    devices = (("d-owner", Role.OWNER), ("d-kid", Role.MEMBER), ("d-old", Role.MEMBER))

    def write(tx: StoreTransaction) -> None:
        for device_id, role in devices:
            credential = device_id.encode()
            tx.devices.add_device(
                device_id, credential, b"k" * 32, 0, role.value, device_id, tx.now_ms()
            )

    await app.store.transact(write)
    cookie, session = app.sessions.start("d-owner", Role.OWNER)
    signed_in = {**origin, "Cookie": f"{COOKIE}={cookie}", CSRF_HEADER: session.csrf}

    async def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = await client.call(method, path, body, headers=signed_in)
        return reply.body

    me = await call("GET", "/v1/app/me")
    holds(me, "GET", "/v1/app/me")
    assert problems({**me, "admin": True}, answer_schema(doc, "GET", "/v1/app/me", 200), doc)
    # The feed is not JSON: its documented media type, then the Server-Sent Events framing.
    feed = doc["paths"]["/v1/app/events/stream"]["get"]["responses"]["200"]["content"]
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=KeyPin(harness.gateway.fingerprint)),
            timeout=aiohttp.ClientTimeout(total=15),
        ) as http,
        http.get(harness.url + "/v1/app/events/stream", headers=signed_in) as stream,
    ):
        assert stream.status == 200
        assert list(feed) == [stream.content_type] == ["text/event-stream"]
        assert await stream.content.readline() == b"retry: 2000\n"
    # A delivery (with its snapshot and clip entries) and a visitor waiting for the owner.
    t = harness.ticket(purpose=Purpose.DELIVERY, package_codes=("PKG-1",))
    opened = await harness.open(t, package_code="PKG-1")
    await harness.done(t, opened.body["session"])
    survey = harness.ticket(purpose=Purpose.SURVEY, subject="Sam Surveyor")
    waiting = (await harness.open(survey)).body
    assert waiting["state"] == "awaiting_approval"
    now = await call("GET", "/v1/app/now")
    assert now["awaiting"]
    holds(now, "GET", "/v1/app/now")
    visitor = await call("GET", f"/v1/app/sessions/{waiting['session']}")
    holds(visitor, "GET", "/v1/app/sessions/{session}")
    act = {"kind": "approve", "target": waiting["session"]}
    holds(await call("POST", "/v1/app/acts/options", {"act": act}), "POST", "/v1/app/acts/options")
    holds(await call("POST", "/v1/app/doors/front/lock"), "POST", "/v1/app/doors/{door}/lock")
    history = await call("GET", "/v1/app/history")
    assert history["visits"]
    holds(history, "GET", "/v1/app/history")
    holds(await call("GET", "/v1/app/devices"), "GET", "/v1/app/devices")
    holds(await client.owner(root, "GET", "/v1/owner/devices"), "GET", "/v1/owner/devices")
    device = "/v1/app/devices/{device}"
    holds(
        await call("POST", "/v1/app/devices/d-kid/rename", {"name": "Kid"}),
        "POST",
        device + "/rename",
    )
    allowed = await call("POST", "/v1/app/devices/d-kid/permission", {"may_open": True})
    holds(allowed, "POST", device + "/permission")
    holds(await call("POST", "/v1/app/devices/d-old/revoke"), "POST", device + "/revoke")
    device = "/v1/owner/devices/{device}"
    renamed = await client.owner(root, "POST", "/v1/owner/devices/d-kid/rename", {"name": "Tab"})
    holds(renamed, "POST", device + "/rename")
    taken = await client.owner(
        root, "POST", "/v1/owner/devices/d-kid/permission", {"may_open": False}
    )
    holds(taken, "POST", device + "/permission")
    holds(
        await client.owner(root, "POST", "/v1/owner/devices/d-kid/revoke"),
        "POST",
        device + "/revoke",
    )
    holds(await call("POST", "/v1/app/signout"), "POST", "/v1/app/signout")


async def test_the_relay_answers_what_its_document_says(tmp_path: Path) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "relay", parties)
    store = await open_sealed_store(tmp_path / "gw.db", parties)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    try:
        doc = (await raw_request(port, "GET", "/v1/openapi.json")).json
        assert every_success_schema_says_something(doc) == []

        def holds(value: Any, method: str, path: str, code: int) -> None:
            found = problems(value, answer_schema(doc, method, path, code), doc)
            assert found == [], (method, path, found)

        holds(doc, "GET", "/v1/openapi.json", 200)
        witness = (await raw_request(port, "GET", "/v1/witness")).json
        holds(witness, "GET", "/v1/witness", 200)
        assert problems({"name": "x"}, answer_schema(doc, "GET", "/v1/witness", 200), doc)
        time_answer = await raw_request(port, "GET", "/v1/time?nonce=" + "a1" * 10)
        holds(time_answer.json, "GET", "/v1/time", 200)
        for n in range(3):
            await store.append("session.closed", {"n": n})
        sync = sync_for(store, url, parties, relay_key=server.relay.public_key)
        acks: list[Any] = []
        record_ack = sync._record_ack

        async def spy(checkpoint: Any, data: dict[str, Any]) -> int:
            acks.append(data)
            return await record_ack(checkpoint, data)

        sync._record_ack = spy  # type: ignore[method-assign]
        try:
            await sync.upload_backlog()
            gw = "/v1/gateways/{gw}"
            holds(acks[0], "POST", gw + "/entries", 200)
            _, mail = await sync._request("GET", f"/v1/gateways/{GATEWAY_ID}/mailbox")
            holds(mail, "GET", gw + "/mailbox", 200)
        finally:
            await sync.stop()
        owner = gw.replace("/v1/", "/v1/owner/")
        async with aiohttp.ClientSession() as session:
            for name in ("entries", "checkpoints", "alarms"):
                got = await owner_get(
                    session, url, parties.owner, f"/v1/owner/gateways/{GATEWAY_ID}/{name}"
                )
                holds(got, "GET", f"{owner}/{name}", 200)
            posted = await owner_post(
                session,
                url,
                parties.owner,
                f"/v1/owner/gateways/{GATEWAY_ID}/mailbox",
                json.dumps({"sealed": base64.b64encode(b"x" * 40).decode()}).encode(),
            )
            holds(posted, "POST", f"{owner}/mailbox", 201)
        receipt = (await store.receipt(2)).to_json()
        answer = await raw_request(
            port,
            "POST",
            "/v1/receipts",
            headers={"Content-Type": "application/json"},
            body=json.dumps(receipt).encode(),
        )
        assert answer.status == 200, answer.body
        holds(answer.json, "POST", "/v1/receipts", 200)
    finally:
        await store.close()
        await server.stop()
