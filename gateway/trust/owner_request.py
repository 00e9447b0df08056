"""Owner request signatures for the LAN API's ``/v1/owner/`` routes (docs/api.md). Pure.

The owner's phone signs every owner request with the owner root key, the key whose public
half the gateway was given at ``init``. The signed message is eight lines, each field free
of newlines by construction, so the encoding is unambiguous::

    threshold-owner-v2
    <gateway id>             the gateway the request is for, e.g. gw-home
    <TLS key fingerprint>    the pin of the key the client saw on this connection (lowercase
                             hex SPKI SHA-256, gateway.trust.tls_pin), or "none" over HTTP
    <METHOD>                 upper case, e.g. POST
    <path and query>         exactly as sent, e.g. /v1/owner/events?since=10
    <hex SHA-256 of body>    of the raw body bytes (of b"" when there is none)
    <unix time>              integer seconds, the same as the header
    <nonce>                  the header's value: base64url of 16 to 32 random bytes

The two audience lines (version 2; version 1 had none) bind a request to one gateway's TLS
key: an impostor the owner's phone talked to, even one claiming the same gateway id, holds a
signature naming ITS key, which the real gateway refuses. A v1 signature never verifies.

Headers: ``Threshold-Owner-Time``, ``Threshold-Owner-Nonce`` and
``Threshold-Owner-Signature`` (base64url of the 64-byte Ed25519 signature).

The time window, the nonce memory and the header checks are ``gateway.trust.request_signature``,
which the cloud relay's requests share (with their own context line). This module is pure:
time comes in as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.signing import SigningKey

from gateway.trust import request_signature
from gateway.trust.base64url import b64u_encode
from gateway.trust.request_signature import HeaderNames, ReplayWindow, SignatureRefused

CONTEXT = "threshold-owner-v2"
TIME_HEADER = "Threshold-Owner-Time"
NONCE_HEADER = "Threshold-Owner-Nonce"
SIGNATURE_HEADER = "Threshold-Owner-Signature"
_HEADERS = HeaderNames(time=TIME_HEADER, nonce=NONCE_HEADER, signature=SIGNATURE_HEADER)


class OwnerAuthError(SignatureRefused):
    """An owner request's signature is missing, malformed, stale, replayed or wrong."""

    code = "unauthorized"


@dataclass(frozen=True, slots=True)
class OwnerAudience:
    """The gateway an owner request is for: its id and its TLS key's fingerprint (None when
    the API is plain HTTP)."""

    gateway_id: str
    tls_fingerprint: str | None

    def lines(self) -> tuple[str, str]:
        return (self.gateway_id, self.tls_fingerprint or "none")


def signed_message(
    audience: OwnerAudience, method: str, path_qs: str, body: bytes, time: int, nonce: str
) -> bytes:
    try:
        return request_signature.signed_message(
            CONTEXT, audience.lines(), method, path_qs, body, time, nonce
        )
    except SignatureRefused as exc:
        raise OwnerAuthError(exc.message) from None


def sign_request(
    owner_key: SigningKey,
    audience: OwnerAudience,
    method: str,
    path_qs: str,
    body: bytes,
    time: int,
    nonce: str,
) -> dict[str, str]:
    """The three headers for one owner request (what a phone app does)."""
    message = signed_message(audience, method, path_qs, body, time, nonce)
    signature = owner_key.sign(message).signature
    return {
        TIME_HEADER: str(time),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: b64u_encode(signature),
    }


@dataclass(frozen=True, slots=True)
class OwnerRequest:
    time: int
    nonce: str


class OwnerRequestVerifier:
    """Checks owner request signatures and remembers nonces to refuse replays."""

    def __init__(
        self,
        owner_public_key: bytes,
        audience: OwnerAudience,
        *,
        skew_s: float,
        not_before: float,
    ) -> None:
        self._key = bytes(owner_public_key)
        self._audience = audience
        self._window = ReplayWindow(skew_s=skew_s, not_before=not_before)

    def verify(
        self,
        method: str,
        path_qs: str,
        body: bytes,
        headers: dict[str, str],
        now: float,
    ) -> OwnerRequest:
        try:
            parsed = request_signature.parse_headers(headers, _HEADERS)
            self._window.check_time(parsed.time, now)
            message = signed_message(
                self._audience, method, path_qs, body, parsed.time, parsed.nonce
            )
            request_signature.check_signature(self._key, message, parsed.signature)
            self._window.remember(parsed.nonce, parsed.time, now)
        except OwnerAuthError:
            raise
        except SignatureRefused as exc:
            raise OwnerAuthError(exc.message) from None
        return OwnerRequest(time=parsed.time, nonce=parsed.nonce)
