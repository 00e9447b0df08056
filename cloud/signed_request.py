"""Signed HTTP requests to the relay: who may call which endpoint, without passwords.

The same scheme as the gateway's owner requests (gateway/owner_auth.py, docs/api.md), with
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

The relay accepts a signature only within ``skew`` seconds of its clock and only once: each
nonce is remembered until its time leaves the window, and a request signed before the relay
started is refused (the nonce memory is in RAM; a client simply signs again). Pure: time is
an argument.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from cloud.errors import CloudError

CONTEXT = "threshold-cloud-v1"
PRINCIPAL_HEADER = "Threshold-Principal"
TIME_HEADER = "Threshold-Time"
NONCE_HEADER = "Threshold-Nonce"
SIGNATURE_HEADER = "Threshold-Signature"
DEFAULT_SKEW_S = 120
OWNER = "owner"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,43}")
_METHOD = re.compile(r"[A-Z]{1,10}")
_PRINCIPAL = re.compile(r"owner|gateway:[\x21-\x7e]{1,128}")


class RequestAuthError(CloudError):
    """A request's signature is missing, malformed, stale, replayed or wrong."""

    code = "unauthorized"


def b64u_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def gateway_principal(gateway_id: str) -> str:
    return f"gateway:{gateway_id}"


def signed_message(
    principal: str, method: str, path_qs: str, body: bytes, time: int, nonce: str
) -> bytes:
    if not _PRINCIPAL.fullmatch(principal):
        raise RequestAuthError("bad principal")
    if not _METHOD.fullmatch(method):
        raise RequestAuthError("bad method")
    if not path_qs.startswith("/") or any(c in path_qs for c in "\r\n"):
        raise RequestAuthError("bad path")
    digest = hashlib.sha256(body).hexdigest()
    lines = (CONTEXT, principal, method, path_qs, digest, str(time), nonce)
    return "\n".join(lines).encode("utf-8")


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
    """Checks request signatures and remembers nonces (for all principals) to refuse replays."""

    def __init__(self, *, skew_s: float = DEFAULT_SKEW_S, not_before: float = 0.0) -> None:
        self._skew = skew_s
        self._not_before = not_before
        self._seen: OrderedDict[str, int] = OrderedDict()

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
        time_text = headers.get(TIME_HEADER)
        nonce = headers.get(NONCE_HEADER)
        sig_text = headers.get(SIGNATURE_HEADER)
        if time_text is None or nonce is None or sig_text is None:
            raise RequestAuthError("signature headers are missing")
        if not time_text.isdigit() or len(time_text) > 12:
            raise RequestAuthError(f"{TIME_HEADER} must be integer unix seconds")
        if not _NONCE.fullmatch(nonce):
            raise RequestAuthError(f"{NONCE_HEADER} must be base64url of 16 to 32 bytes")
        try:
            signature = b64u_decode(sig_text)
        except ValueError:
            raise RequestAuthError(f"{SIGNATURE_HEADER} is not base64url") from None
        if len(signature) != 64:
            raise RequestAuthError(f"{SIGNATURE_HEADER} must be 64 bytes")
        time = int(time_text)
        if abs(time - now) > self._skew:
            raise RequestAuthError("signature time is outside the allowed window")
        if time < int(self._not_before):
            raise RequestAuthError("signature predates the relay's start; sign it again")
        try:
            VerifyKey(public_key).verify(
                signed_message(principal, method, path_qs, body, time, nonce), signature
            )
        except (BadSignatureError, ValueError):
            raise RequestAuthError("signature does not verify") from None
        self._forget_older_than(now - self._skew)
        if nonce in self._seen:
            raise RequestAuthError("request replayed (nonce already used)")
        self._seen[nonce] = time
        return SignedRequest(principal=principal, time=time, nonce=nonce)

    def _forget_older_than(self, horizon: float) -> None:
        while self._seen:
            nonce, time = next(iter(self._seen.items()))
            if time >= horizon - self._skew:
                break
            del self._seen[nonce]
