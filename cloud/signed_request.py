"""Signed HTTP requests to the relay: who may call which endpoint, without passwords.

The same scheme as the gateway's owner requests (gateway/trust/owner_request.py, docs/api.md), with
a context line of its own so that a request signed for the home gateway can never be
replayed to the cloud or the other way round. The signed message is seven lines, each free
of newlines by construction::

    threshold-cloud-v1
    <principal>              "owner", or "gateway:<gateway id>"
    <METHOD>                 upper case
    <path and query>         exactly as sent
    <hex SHA-256 of body>    of the raw body bytes (of b"" when there is none)
    <unix time>              integer seconds, the same as the header
    <nonce>                  base64url of 16 to 32 random bytes

Headers: ``Threshold-Principal``, ``Threshold-Time``, ``Threshold-Nonce``,
``Threshold-Signature`` (base64url, no padding, of the 64-byte Ed25519 signature).

The time window, the nonce memory (shared by all principals) and the header checks are
``gateway.trust.request_signature``, the core both schemes share. Pure: time is an argument.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from nacl.signing import SigningKey

from cloud.errors import CloudError
from gateway.trust import request_signature
from gateway.trust.base64url import b64u_encode
from gateway.trust.request_signature import HeaderNames, ReplayWindow, SignatureRefused

CONTEXT = "threshold-cloud-v1"
PRINCIPAL_HEADER = "Threshold-Principal"
TIME_HEADER = "Threshold-Time"
NONCE_HEADER = "Threshold-Nonce"
SIGNATURE_HEADER = "Threshold-Signature"
DEFAULT_SKEW_S = 120
OWNER = "owner"
_PRINCIPAL = re.compile(r"owner|gateway:[\x21-\x7e]{1,128}")
_HEADERS = HeaderNames(time=TIME_HEADER, nonce=NONCE_HEADER, signature=SIGNATURE_HEADER)


class RequestAuthError(CloudError):
    """A request's signature is missing, malformed, stale, replayed or wrong."""

    code = "unauthorized"


def gateway_principal(gateway_id: str) -> str:
    return f"gateway:{gateway_id}"


def signed_message(
    principal: str, method: str, path_qs: str, body: bytes, time: int, nonce: str
) -> bytes:
    if not _PRINCIPAL.fullmatch(principal):
        raise RequestAuthError("bad principal")
    try:
        return request_signature.signed_message(
            CONTEXT, (principal,), method, path_qs, body, time, nonce
        )
    except SignatureRefused as exc:
        raise RequestAuthError(exc.message) from None


def sign_request(
    key: SigningKey, principal: str, method: str, path_qs: str, body: bytes, time: int
) -> dict[str, str]:
    """The four headers of one signed request, with a fresh random nonce."""
    nonce = b64u_encode(os.urandom(16))
    signature = key.sign(signed_message(principal, method, path_qs, body, time, nonce)).signature
    return {
        PRINCIPAL_HEADER: principal,
        TIME_HEADER: str(time),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: b64u_encode(signature),
    }


@dataclass(frozen=True, slots=True)
class SignedRequest:
    principal: str
    time: int
    nonce: str


def read_principal(headers: Mapping[str, str]) -> str:
    principal = headers.get(PRINCIPAL_HEADER)
    if principal is None or not _PRINCIPAL.fullmatch(principal):
        raise RequestAuthError(f"{PRINCIPAL_HEADER} is missing or malformed")
    return principal


class RequestVerifier:
    """Checks request signatures; :meth:`verify` also remembers nonces (for all principals,
    in this process) to refuse replays, :meth:`check` leaves that to the caller."""

    def __init__(self, *, skew_s: float = DEFAULT_SKEW_S, not_before: float = 0.0) -> None:
        self._window = ReplayWindow(skew_s=skew_s, not_before=not_before)
        self.skew_s = skew_s

    def check(
        self,
        public_key: bytes,
        method: str,
        path_qs: str,
        body: bytes,
        headers: Mapping[str, str],
        now: float,
    ) -> SignedRequest:
        """Everything but the nonce memory: the caller records the nonce where every relay
        process sees it (``RelayStorage.claim_nonce``), after this passed."""
        principal = read_principal(headers)
        try:
            parsed = request_signature.parse_headers(headers, _HEADERS)
            self._window.check_time(parsed.time, now)
            message = signed_message(principal, method, path_qs, body, parsed.time, parsed.nonce)
            request_signature.check_signature(public_key, message, parsed.signature)
        except SignatureRefused as exc:
            raise RequestAuthError(exc.message) from None
        return SignedRequest(principal=principal, time=parsed.time, nonce=parsed.nonce)

    def verify(
        self,
        public_key: bytes,
        method: str,
        path_qs: str,
        body: bytes,
        headers: Mapping[str, str],
        now: float,
    ) -> SignedRequest:
        principal = read_principal(headers)
        try:
            parsed = request_signature.parse_headers(headers, _HEADERS)
            self._window.check_time(parsed.time, now)
            message = signed_message(principal, method, path_qs, body, parsed.time, parsed.nonce)
            request_signature.check_signature(public_key, message, parsed.signature)
            self._window.remember(parsed.nonce, parsed.time, now)
        except SignatureRefused as exc:
            raise RequestAuthError(exc.message) from None
        return SignedRequest(principal=principal, time=parsed.time, nonce=parsed.nonce)
