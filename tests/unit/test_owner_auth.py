"""Owner request signatures and the rate limiter (pure)."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from gateway.api.ratelimit import RateLimiter
from gateway.trust.owner_request import (
    OwnerAudience,
    OwnerAuthError,
    OwnerRequestVerifier,
    sign_request,
    signed_message,
)

OWNER = SigningKey.generate()
NONCE = "A" * 32
T0 = 1_800_000_000
FP = "3f" * 32
HOME = OwnerAudience("gw-home", FP)


def verifier() -> OwnerRequestVerifier:
    return OwnerRequestVerifier(bytes(OWNER.verify_key), HOME, skew_s=120, not_before=T0 - 10)


def test_signed_message_is_exactly_eight_lines() -> None:
    msg = signed_message(HOME, "POST", "/v1/owner/lock", b"{}", T0, NONCE)
    assert msg.decode().split("\n") == [
        "threshold-owner-v2",
        "gw-home",
        FP,
        "POST",
        "/v1/owner/lock",
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        str(T0),
        NONCE,
    ]


def test_good_signature_once_then_replay_refused() -> None:
    v = verifier()
    headers = sign_request(OWNER, HOME, "GET", "/v1/owner/events?since=3", b"", T0, NONCE)
    assert v.verify("GET", "/v1/owner/events?since=3", b"", headers, T0 + 5).nonce == NONCE
    with pytest.raises(OwnerAuthError, match="replayed"):
        v.verify("GET", "/v1/owner/events?since=3", b"", headers, T0 + 6)


@pytest.mark.parametrize(
    ("method", "path", "body", "now", "match"),
    [
        ("POST", "/v1/owner/events?since=3", b"", T0, "does not verify"),
        ("GET", "/v1/owner/events?since=4", b"", T0, "does not verify"),
        ("GET", "/v1/owner/events?since=3", b"x", T0, "does not verify"),
        ("GET", "/v1/owner/events?since=3", b"", T0 + 121, "outside the allowed window"),
        ("GET", "/v1/owner/events?since=3", b"", T0 - 121, "outside the allowed window"),
    ],
)
def test_anything_changed_is_refused(
    method: str, path: str, body: bytes, now: int, match: str
) -> None:
    headers = sign_request(OWNER, HOME, "GET", "/v1/owner/events?since=3", b"", T0, NONCE)
    with pytest.raises(OwnerAuthError, match=match):
        verifier().verify(method, path, body, headers, now)


@pytest.mark.parametrize(
    "audience",
    [
        OwnerAudience("gw-home", "4e" * 32),  # an impostor claiming the id, with its own key
        OwnerAudience("gw-cabin", FP),
        OwnerAudience("gw-home", None),  # signed for plain HTTP
    ],
)
def test_a_signature_for_another_gateway_is_refused(audience: OwnerAudience) -> None:
    headers = sign_request(OWNER, audience, "POST", "/v1/owner/lock", b"{}", T0, NONCE)
    with pytest.raises(OwnerAuthError, match="does not verify"):
        verifier().verify("POST", "/v1/owner/lock", b"{}", headers, T0)


def test_wrong_key_missing_headers_and_pre_start_signatures() -> None:
    other = sign_request(SigningKey.generate(), HOME, "GET", "/v1/owner/sessions", b"", T0, NONCE)
    with pytest.raises(OwnerAuthError, match="does not verify"):
        verifier().verify("GET", "/v1/owner/sessions", b"", other, T0)
    with pytest.raises(OwnerAuthError, match="missing"):
        verifier().verify("GET", "/v1/owner/sessions", b"", {}, T0)
    early = sign_request(OWNER, HOME, "GET", "/v1/owner/sessions", b"", T0 - 60, NONCE)
    with pytest.raises(OwnerAuthError, match="predates"):
        verifier().verify("GET", "/v1/owner/sessions", b"", early, T0)
    bad = dict(other, **{"Threshold-Owner-Nonce": "short"})
    with pytest.raises(OwnerAuthError, match="base64url"):
        verifier().verify("GET", "/v1/owner/sessions", b"", bad, T0)


def test_rate_limiter_refills_and_bounds_memory() -> None:
    limiter = RateLimiter(60, burst=2, max_keys=3)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.retry_after("a") == pytest.approx(1.0)
    assert limiter.allow("a", 1.01)
    for key in "bcdef":
        limiter.allow(key, 2.0)
    assert len(limiter) == 3


def test_rate_limiter_eviction_never_refunds_a_limited_key() -> None:
    limiter = RateLimiter(60, burst=2, max_keys=3)
    assert [limiter.allow("victim", 0.0) for _ in range(3)] == [True, True, False]
    # Junk keys while the victim's bucket is still empty: it is not forgotten.
    for i in range(50):
        limiter.allow(f"junk{i}", 0.1 + i / 1000)
    assert len(limiter) <= 3
    assert not limiter.allow("victim", 0.2)
    # Once every bucket has refilled, the old ones make room again.
    assert limiter.allow("new", 100.0)
    assert len(limiter) <= 3


def test_docs_example_is_the_exact_signed_message() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    head = f"threshold-owner-v2\ngw-home\n{'3f' * 32}\nGET\n"
    block = doc.split(head, 1)[1].split("```", 1)[0]
    documented = (head + block).rstrip("\n").encode()
    assert documented == signed_message(
        HOME, "GET", "/v1/owner/events?since=3", b"", 1_800_000_000, "A" * 32
    )
