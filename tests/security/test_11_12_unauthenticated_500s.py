"""Issue 11, finding 12: unauthenticated requests that caused a 500 (with a traceback in the
log). Every input gets a problem+json 400, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl

import pytest

from gateway.trust.base64url import b64u_encode
from tests.support.service import GatewayHarness, harness

__all__ = ["harness"]

DEEP = b"[" * 100_000 + b"]" * 100_000


def assert_bad_request(status: int, body: dict[str, object], what: str) -> None:
    assert status == 400, (what, status, body)
    assert body.get("code") in ("bad_request", "unauthorized", "bad_token"), (what, body)
    assert "Traceback" not in json.dumps(body), what


async def test_deeply_nested_json_bodies_are_400(
    harness: GatewayHarness, caplog: pytest.LogCaptureFixture
) -> None:
    for path in ("/v1/access", "/v1/access/s-000000000000000000000000/done"):
        reply = await harness.client.request("POST", path, raw=DEEP[:16_000] + DEEP[-16_000:])
        # Over the body cap it is a 413; under it, a nesting the parser cannot follow.
        assert reply.status in (400, 413), (path, reply)
        nested = b"[" * 5000 + b"]" * 5000
        reply = await harness.client.request("POST", path, raw=nested)
        assert_bad_request(reply.status, reply.body, path)
        obj = b'{"a":' * 2500 + b"1" + b"}" * 2500
        reply = await harness.client.request("POST", path, raw=obj)
        assert_bad_request(reply.status, reply.body, path)
    assert "internal error" not in caplog.text
    assert "RecursionError" not in caplog.text


async def test_owner_time_header_of_superscript_digits_is_401_not_500(
    harness: GatewayHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    # Superscript, Arabic-Indic and mathematical bold digits: str.isdigit() passes them all.
    scripts = ("\u00b9\u2077" + "\u2070" * 8, "\u0661\u0667" + "\u0660" * 8, "\U0001d7cf" * 10)
    for time_text in scripts:
        headers = {
            "Threshold-Owner-Time": time_text,
            "Threshold-Owner-Nonce": b64u_encode(b"\0" * 24),
            "Threshold-Owner-Signature": b64u_encode(b"\0" * 64),
        }
        reply = await harness.client.request("GET", "/v1/owner/events", headers=headers)
        assert (reply.status, reply.body.get("code")) == (401, "unauthorized"), (time_text, reply)
    assert "internal error" not in caplog.text


async def test_an_app_cookie_that_is_not_utf8_is_401_not_500(
    harness: GatewayHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by tests/fuzz/test_fuzz_owner_app.py: a header byte that is not UTF-8 reaches
    Python as a lone surrogate, and hashing such a session cookie raised UnicodeEncodeError,
    a 500 on the owner app for anyone on the LAN. Sent as raw bytes over TLS, as an attacker
    would (an HTTP client library would refuse to send them)."""
    caplog.set_level(logging.ERROR)
    gateway = harness.gateway
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the probe reads the answer, whatever the key
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port, ssl=context)
    try:
        writer.write(
            b"GET /v1/app/me HTTP/1.1\r\nHost: localhost\r\n"
            b"Cookie: __Host-threshold-session=ab\xffcd\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), head
    assert json.loads(body)["code"] == "not_signed_in"
    assert "internal error" not in caplog.text


async def test_an_enrollment_token_that_is_not_unicode_is_400_not_500(
    harness: GatewayHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by tests/fuzz/test_fuzz_owner_app.py: a lone surrogate spelled in JSON
    (``"\\ud800"``) as the token of the public ``POST /v1/app/enroll/options`` reached the
    token's hash, which could not encode it: a 500 for anyone on the LAN."""
    caplog.set_level(logging.ERROR)
    app = harness.gateway.owner_app
    assert app is not None
    reply = await harness.client.request(
        "POST",
        "/v1/app/enroll/options",
        raw=b'{"token": "\\ud800"}',
        headers={"Origin": app.origin},
    )
    assert (reply.status, reply.body.get("code")) == (400, "bad_request"), reply
    assert "internal error" not in caplog.text
