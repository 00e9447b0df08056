"""Signed relay requests: verify, and refuse stale, replayed, tampered or mis-addressed ones."""

from __future__ import annotations

import os

import pytest
from nacl.signing import SigningKey

from cloud.signed_request import (
    NONCE_HEADER,
    RequestAuthError,
    RequestVerifier,
    gateway_principal,
    sign_request,
)


def test_round_trip_and_refusals() -> None:
    key = SigningKey(os.urandom(32))
    public = bytes(key.verify_key)
    principal = gateway_principal("gw-1")
    headers = sign_request(key, principal, "POST", "/v1/x?a=1", b"body", 1000)
    verifier = RequestVerifier(skew_s=120, not_before=900)
    assert (
        verifier.verify(public, "POST", "/v1/x?a=1", b"body", headers, 1010).principal == principal
    )
    with pytest.raises(RequestAuthError, match="replayed"):
        verifier.verify(public, "POST", "/v1/x?a=1", b"body", headers, 1010)
    fresh = RequestVerifier(skew_s=120, not_before=900)
    for method, path, body, now in (
        ("POST", "/v1/x?a=1", b"other", 1000),
        ("POST", "/v1/x?a=2", b"body", 1000),
        ("GET", "/v1/x?a=1", b"body", 1000),
        ("POST", "/v1/x?a=1", b"body", 1121),
    ):
        with pytest.raises(RequestAuthError):
            fresh.verify(public, method, path, body, headers, now)
    with pytest.raises(RequestAuthError):
        fresh.verify(
            bytes(SigningKey(os.urandom(32)).verify_key),
            "POST",
            "/v1/x?a=1",
            b"body",
            headers,
            1000,
        )
    with pytest.raises(RequestAuthError, match="predates"):
        RequestVerifier(skew_s=120, not_before=1001).verify(
            public, "POST", "/v1/x?a=1", b"body", headers, 1000
        )
    with pytest.raises(RequestAuthError):
        fresh.verify(public, "POST", "/v1/x?a=1", b"body", {**headers, NONCE_HEADER: "x"}, 1000)
    with pytest.raises(RequestAuthError):
        fresh.verify(public, "POST", "/v1/x?a=1", b"body", {}, 1000)
