"""Owner request signatures for the LAN API's ``/v1/owner/`` routes (docs/api.md).

The owner's phone signs every owner request with the owner root key, the key whose public
half the gateway was given at ``init``. The signed message is five lines, each field free of
newlines by construction, so the encoding is unambiguous::

    threshold-owner-v1
    <METHOD>                 upper case, e.g. POST
    <path and query>         exactly as sent, e.g. /v1/owner/events?since=10
    <hex SHA-256 of body>    of the raw body bytes (of b"" when there is none)
    <unix time>              integer seconds, the same as the header
    <nonce>                  the header's value: base64url of 16 to 32 random bytes

Headers: ``Threshold-Owner-Time``, ``Threshold-Owner-Nonce`` and
``Threshold-Owner-Signature`` (base64url of the 64-byte Ed25519 signature).

The gateway accepts a signature only within ``skew`` seconds of its own clock and only once:
each nonce is remembered until its time falls out of the window. The nonce memory is in RAM,
so a request whose signed time is earlier than the service's start is refused outright: that
closes the replay window a restart would otherwise open (the owner's app simply signs again).
This module is pure: time comes in as an argument.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from gateway.config import b64u_decode, b64u_encode
from gateway.errors import GatewayError

CONTEXT = "threshold-owner-v1"
TIME_HEADER = "Threshold-Owner-Time"
NONCE_HEADER = "Threshold-Owner-Nonce"
SIGNATURE_HEADER = "Threshold-Owner-Signature"
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22,43}")
_METHOD_RE = re.compile(r"[A-Z]{1,10}")


class OwnerAuthError(GatewayError):
    """An owner request's signature is missing, malformed, stale, replayed or wrong."""

    code = "unauthorized"


def signed_message(method: str, path_qs: str, body: bytes, time: int, nonce: str) -> bytes:
    if not _METHOD_RE.fullmatch(method):
        raise OwnerAuthError("bad method")
    if not path_qs.startswith("/") or any(c in path_qs for c in "\r\n"):
        raise OwnerAuthError("bad path")
    lines = (CONTEXT, method, path_qs, hashlib.sha256(body).hexdigest(), str(time), nonce)
    return "\n".join(lines).encode("utf-8")


def sign_request(
    owner_key: SigningKey, method: str, path_qs: str, body: bytes, time: int, nonce: str
) -> dict[str, str]:
    """The three headers for one owner request (what a phone app does)."""
    signature = owner_key.sign(signed_message(method, path_qs, body, time, nonce)).signature
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

    def __init__(self, owner_public_key: bytes, *, skew_s: float, not_before: float) -> None:
        self._key = VerifyKey(owner_public_key)
        self._skew = skew_s
        self._not_before = not_before
        self._seen: OrderedDict[str, int] = OrderedDict()

    def verify(
        self,
        method: str,
        path_qs: str,
        body: bytes,
        headers: dict[str, str],
        now: float,
    ) -> OwnerRequest:
        time_text = headers.get(TIME_HEADER)
        nonce = headers.get(NONCE_HEADER)
        sig_text = headers.get(SIGNATURE_HEADER)
        if time_text is None or nonce is None or sig_text is None:
            raise OwnerAuthError("owner signature headers are missing")
        if not time_text.isdigit() or len(time_text) > 12:
            raise OwnerAuthError(f"{TIME_HEADER} must be integer unix seconds")
        if not _NONCE_RE.fullmatch(nonce):
            raise OwnerAuthError(f"{NONCE_HEADER} must be base64url of 16 to 32 bytes")
        try:
            signature = b64u_decode(sig_text)
        except ValueError:
            raise OwnerAuthError(f"{SIGNATURE_HEADER} is not base64url") from None
        if len(signature) != 64:
            raise OwnerAuthError(f"{SIGNATURE_HEADER} must be 64 bytes")
        time = int(time_text)
        if abs(time - now) > self._skew:
            raise OwnerAuthError("owner signature time is outside the allowed window")
        if time < int(self._not_before):
            raise OwnerAuthError("owner signature predates the gateway's start; sign it again")
        try:
            self._key.verify(signed_message(method, path_qs, body, time, nonce), signature)
        except BadSignatureError:
            raise OwnerAuthError("owner signature does not verify") from None
        self._forget_older_than(now - self._skew)
        if nonce in self._seen:
            raise OwnerAuthError("owner request replayed (nonce already used)")
        self._seen[nonce] = time
        return OwnerRequest(time=time, nonce=nonce)

    def _forget_older_than(self, horizon: float) -> None:
        # Nonces arrive roughly in time order; a stale one at the front is dropped, and one
        # signed with an older time behind a newer one just stays until it is passed.
        while self._seen:
            nonce, time = next(iter(self._seen.items()))
            if time >= horizon - self._skew:
                break
            del self._seen[nonce]
