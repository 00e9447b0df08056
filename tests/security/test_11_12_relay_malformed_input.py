"""Issue 11, findings 12 and 15 (the relay's part): unauthenticated input that made the relay
answer 500 and log a traceback. Every one must get a typed problem+json, and nothing may
reach aiohttp's own error handler (which logs the traceback and answers text/plain 500).

The attacks: a signature time header of Unicode digits (``str.isdigit()`` passes, ``int()``
fails), JSON nested past the parser's recursion limit, a number past Python's int-string
conversion limit, bodies over the caps, and a non-ASCII digit in a signed query.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.relay import MAX_BODY, MAX_RECEIPT_BYTES
from cloud.signed_request import OWNER, gateway_principal, sign_request
from gateway.trust.base64url import b64u_encode
from tests.support.cloud import GATEWAY_ID, new_parties
from tests.support.relay_attack import (
    RawReply,
    forged_receipt,
    post_receipt,
    raw_request,
    start_relay_with,
)
from tests.support.relay_backend import RelayBackend

PROBLEM = "application/problem+json"
SUPERSCRIPT_NOW = str(int(time.time())).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def assert_problem(reply: RawReply, status: int, code: str) -> None:
    assert reply.headers["content-type"].startswith(PROBLEM), reply
    assert (reply.status, reply.json["code"]) == (status, code), reply.json


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    escaped = [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]
    assert escaped == [], [r.getMessage() for r in escaped]


def unsigned_headers(principal: str, time_text: str) -> dict[str, str]:
    return {
        "Threshold-Principal": principal,
        "Threshold-Time": time_text,
        "Threshold-Nonce": b64u_encode(os.urandom(16)),
        "Threshold-Signature": b64u_encode(os.urandom(64)),
    }


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    ("principal", "path"),
    [
        (OWNER, f"/v1/owner/gateways/{GATEWAY_ID}/alarms"),
        (gateway_principal(GATEWAY_ID), f"/v1/gateways/{GATEWAY_ID}/mailbox"),
    ],
)
async def test_a_time_header_of_superscript_digits_is_refused(
    tmp_path: Path, principal: str, path: str, relay_backend: RelayBackend
) -> None:
    assert SUPERSCRIPT_NOW.isdigit()
    server, port = await start_relay_with(tmp_path / "relay", new_parties(), backend=relay_backend)
    try:
        reply = await raw_request(
            port, "GET", path, headers=unsigned_headers(principal, SUPERSCRIPT_NOW)
        )
        assert_problem(reply, 401, "unauthorized")
        assert "Threshold-Time" in reply.json["detail"]
    finally:
        await server.stop()


NESTED_ARRAY = b"[" * 30_000 + b"]" * 30_000
NESTED_OBJECT = b'{"a":' * 30_000 + b"1" + b"}" * 30_000
# A forged receipt, well formed but for one number: 5,000 digits (past Python's int-string
# conversion limit), or 2^63 (past SQLite's INTEGER, reached by the lookup of witnessed
# checkpoints of that size before any signature is checked).
HUGE_NUMBER = (
    json.dumps(forged_receipt(GATEWAY_ID, tree_size=8))
    .encode()
    .replace(b'"tree_size": 8', b'"tree_size": ' + b"7" * 5_000)
)
TOO_BIG_FOR_SQL = json.dumps(forged_receipt(GATEWAY_ID, tree_size=2**63)).encode()


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    "body",
    [NESTED_ARRAY, NESTED_OBJECT, HUGE_NUMBER, TOO_BIG_FOR_SQL, b"\xff\xfe{", b""],
    ids=["nested-array", "nested-object", "5000-digits", "2^63", "not-utf8", "empty"],
)
async def test_a_malformed_receipt_is_a_typed_400(
    tmp_path: Path, body: bytes, relay_backend: RelayBackend
) -> None:
    server, port = await start_relay_with(tmp_path / "relay", new_parties(), backend=relay_backend)
    try:
        assert_problem(await post_receipt(port, body), 400, "malformed")
    finally:
        await server.stop()


@pytest.mark.usefixtures("no_tracebacks")
async def test_oversized_bodies_are_a_typed_413(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    server, port = await start_relay_with(tmp_path / "relay", new_parties(), backend=relay_backend)
    try:
        receipt = b'{"gateway": "' + b"x" * MAX_RECEIPT_BYTES + b'"}'
        assert_problem(await post_receipt(port, receipt), 413, "payload_too_large")
        mail = b'{"sealed": "' + b"A" * MAX_BODY + b'"}'
        reply = await raw_request(
            port,
            "POST",
            f"/v1/owner/gateways/{GATEWAY_ID}/mailbox",
            headers=unsigned_headers(OWNER, str(int(time.time()))),
            body=mail,
        )
        assert_problem(reply, 413, "payload_too_large")
    finally:
        await server.stop()


@pytest.mark.usefixtures("no_tracebacks")
async def test_nested_json_from_the_owner_is_a_typed_400(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, port = await start_relay_with(tmp_path / "relay", parties, backend=relay_backend)
    try:
        path = f"/v1/owner/gateways/{GATEWAY_ID}/mailbox"
        headers = sign_request(parties.owner, OWNER, "POST", path, NESTED_ARRAY, int(time.time()))
        reply = await raw_request(port, "POST", path, headers=headers, body=NESTED_ARRAY)
        assert_problem(reply, 400, "malformed")
    finally:
        await server.stop()


@pytest.mark.usefixtures("no_tracebacks")
async def test_a_superscript_digit_in_a_signed_query_is_a_typed_400(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, port = await start_relay_with(tmp_path / "relay", parties, backend=relay_backend)
    try:
        path = f"/v1/gateways/{GATEWAY_ID}/mailbox?after=%C2%B2"  # after=²
        headers = sign_request(
            parties.gateway, gateway_principal(GATEWAY_ID), "GET", path, b"", int(time.time())
        )
        reply = await raw_request(port, "GET", path, headers=headers)
        assert_problem(reply, 400, "malformed")
    finally:
        await server.stop()


class _Heard(logging.Handler):
    """Sets an event when the relay logs a line containing ``words`` (same thread: the loop)."""

    def __init__(self, words: str) -> None:
        super().__init__(logging.DEBUG)
        self.words = words
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.event.set()


@pytest.mark.usefixtures("no_tracebacks")
async def test_an_upload_cut_off_mid_body_is_not_an_internal_error(tmp_path: Path) -> None:
    """A gateway's upload cut by its network (the chaos test's ``cut_request``) once logged a
    ConnectionResetError traceback as the relay's internal error."""
    parties = new_parties()
    server, port = await start_relay_with(tmp_path / "relay", parties)
    heard = _Heard("client went away")
    relay_log = logging.getLogger("threshold.relay")
    relay_log.addHandler(heard)
    try:
        path = f"/v1/gateways/{GATEWAY_ID}/entries"
        body = b'{"entries": []}' * 100
        headers = sign_request(
            parties.gateway, gateway_principal(GATEWAY_ID), "POST", path, body, int(time.time())
        )
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body[:10])
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(heard.event.wait(), 10)
    finally:
        relay_log.removeHandler(heard)
        await server.stop()
