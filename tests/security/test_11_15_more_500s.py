"""Issue 11, finding 15: more inputs that caused a 500. A signed owner query with a number
past SQLite's integers, a ticket whose payload is deeply nested JSON (reached by the
unverified id peek used for rate limiting), and the same nesting on owner routes: all typed
400s."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.trust.base64url import b64u_encode
from tests.support.service import GatewayHarness, harness

__all__ = ["harness"]


def fake_ticket(payload: bytes) -> str:
    return "v4.public." + b64u_encode(payload + b"\0" * 64)


async def test_owner_events_query_beyond_sqlite_integers_is_400(
    harness: GatewayHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    client, owner = harness.client, harness.keys.owner
    for query in (
        "since=9223372036854775808",
        "since=99999999999999999999999999",
        "limit=9223372036854775808",
        "since=-1",
        "since=%C2%B9",
        "since=",
        "since=1_000",
        "since=+5",
    ):
        path = f"/v1/owner/events?{query}"
        reply = await client.request(
            "GET", path, headers=await client.owner_headers(owner, "GET", path, b"")
        )
        assert (reply.status, reply.body.get("code")) == (400, "bad_request"), (query, reply)
    path = "/v1/owner/events?since=9223372036854775807&limit=1000"
    reply = await client.request(
        "GET", path, headers=await client.owner_headers(owner, "GET", path, b"")
    )
    assert (reply.status, reply.body) == (200, {"events": []})
    assert "internal error" not in caplog.text


async def test_ticket_with_deeply_nested_payload_is_refused_not_500(
    harness: GatewayHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    nonce = b64u_encode(await harness.client.challenge())
    # Under the 4,096-character token limit, deeper than the JSON parser's recursion limit.
    for payload in (b"[" * 1400 + b"]" * 1400, b'{"jti":' + b"[" * 1300 + b"]" * 1300 + b"}"):
        body = {
            "ticket": fake_ticket(payload),
            "door": "front",
            "nonce": nonce,
            "proof": b64u_encode(b"\0" * 64),
        }
        reply = await harness.client.request("POST", "/v1/access", body)
        assert 400 <= reply.status < 500, reply
        assert isinstance(reply.body.get("code"), str), reply
    assert "internal error" not in caplog.text


async def test_nested_json_on_owner_routes_is_400(
    harness: GatewayHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    client, owner = harness.client, harness.keys.owner
    for path in ("/v1/owner/approvals", "/v1/owner/revocations", "/v1/owner/lock"):
        for raw in (b"[" * 5000 + b"]" * 5000, b'{"a":' * 2000 + b"1" + b"}" * 2000):
            headers = await client.owner_headers(owner, "POST", path, raw)
            reply = await client.request("POST", path, headers=headers, raw=raw)
            assert (reply.status, reply.body.get("code")) == (400, "bad_request"), (path, reply)
    # And a signed token that is nested JSON inside (the approval and revocation decoders).
    for path, field in (
        ("/v1/owner/approvals", "approval"),
        ("/v1/owner/revocations", "revocations"),
    ):
        raw = json.dumps({field: fake_ticket(b"[" * 1400 + b"]" * 1400)}).encode()
        headers = await client.owner_headers(owner, "POST", path, raw)
        reply = await client.request("POST", path, headers=headers, raw=raw)
        assert 400 <= reply.status < 500, (path, reply)
    assert "internal error" not in caplog.text
