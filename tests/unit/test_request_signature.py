"""The signed-request core shared by owner requests and cloud requests."""

from __future__ import annotations

import os

import pytest
from nacl.signing import SigningKey

from gateway.trust import request_signature as rs
from gateway.trust.paseto import b64encode

NAMES = rs.HeaderNames(time="T", nonce="N", signature="S")
NOW = 1_800_000_000


def headers_for(key: SigningKey, time: int, nonce: str, body: bytes = b"") -> dict[str, str]:
    message = rs.signed_message("ctx-v1", ("extra",), "POST", "/v1/x", body, time, nonce)
    return {"T": str(time), "N": nonce, "S": b64encode(key.sign(message).signature)}


def check(key: SigningKey, window: rs.ReplayWindow, headers: dict[str, str]) -> None:
    parsed = rs.parse_headers(headers, NAMES)
    window.check_time(parsed.time, NOW)
    message = rs.signed_message(
        "ctx-v1", ("extra",), "POST", "/v1/x", b"", parsed.time, parsed.nonce
    )
    rs.check_signature(bytes(key.verify_key), message, parsed.signature)
    window.remember(parsed.nonce, parsed.time, NOW)


def test_accepts_once_then_refuses_the_replay() -> None:
    key = SigningKey.generate()
    window = rs.ReplayWindow(skew_s=120, not_before=0)
    headers = headers_for(key, NOW, b64encode(os.urandom(16)))
    check(key, window, headers)
    with pytest.raises(rs.SignatureRefused, match="replayed"):
        check(key, window, headers)


def test_a_forged_request_does_not_use_up_its_nonce() -> None:
    key, forger = SigningKey.generate(), SigningKey.generate()
    window = rs.ReplayWindow(skew_s=120, not_before=0)
    nonce = b64encode(os.urandom(16))
    with pytest.raises(rs.SignatureRefused, match="does not verify"):
        check(key, window, headers_for(forger, NOW, nonce))
    check(key, window, headers_for(key, NOW, nonce))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"T": "12x"}, "integer"),
        ({"N": "short"}, "base64url"),
        ({"S": "A" * 85 + "B"}, "canonical"),
        ({"S": b64encode(bytes(63))}, "64 bytes"),
        ({"T": str(NOW - 121)}, "window"),
    ],
)
def test_malformed_or_stale_headers_are_refused(change: dict[str, str], match: str) -> None:
    key = SigningKey.generate()
    headers = headers_for(key, NOW, b64encode(os.urandom(16))) | change
    with pytest.raises(rs.SignatureRefused, match=match):
        check(key, rs.ReplayWindow(skew_s=120, not_before=0), headers)


def test_missing_headers_and_newlines_are_refused() -> None:
    with pytest.raises(rs.SignatureRefused, match="missing"):
        rs.parse_headers({"T": "1"}, NAMES)
    with pytest.raises(rs.SignatureRefused):
        rs.signed_message("ctx", ("a\nb",), "POST", "/x", b"", 1, "n")
    with pytest.raises(rs.SignatureRefused):
        rs.signed_message("ctx", (), "POST", "/x\r\n", b"", 1, "n")


def test_a_request_signed_before_the_service_started_is_refused() -> None:
    window = rs.ReplayWindow(skew_s=120, not_before=NOW)
    with pytest.raises(rs.SignatureRefused, match="predates"):
        window.check_time(NOW - 1, NOW)
