"""Signed HTTP requests: the pure core shared by owner requests to the gateway's LAN API
(``gateway.trust.owner_request``) and every request to the cloud relay (``cloud.signed_request``).

A signed request carries its time, a random nonce and an Ed25519 signature in headers. The
signed message is newline-separated lines, each free of newlines by construction, so the
encoding is unambiguous::

    <context>                e.g. threshold-owner-v2; one per scheme, so a request signed
                             for one service can never be replayed to another
    <extra lines>            scheme-specific, e.g. the cloud's principal
    <METHOD>                 upper case
    <path and query>         exactly as sent
    <hex SHA-256 of body>    of the raw body bytes (of b"" when there is none)
    <unix time>              integer seconds, the same as the header
    <nonce>                  base64url of 16 to 32 random bytes

A verifier accepts a signature only within ``skew`` seconds of its own clock, and each nonce
only once (:class:`ReplayWindow`). The nonce memory is in RAM, so a request signed before the
verifier started is refused outright: that closes the replay window a restart would
otherwise reopen, and a client simply signs again.

Pure: no I/O; time comes in as an argument. Callers turn :class:`SignatureRefused` into
their own package's error.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from gateway.errors import GatewayError
from gateway.trust.paseto import PasetoError, b64decode

_NONCE = re.compile(r"[A-Za-z0-9_-]{22,43}")
_METHOD = re.compile(r"[A-Z]{1,10}")
_TIME = re.compile(r"[0-9]{1,12}")


class SignatureRefused(GatewayError):
    """A request's signature is missing, malformed, stale, replayed or wrong."""

    code = "unauthorized"


@dataclass(frozen=True, slots=True)
class HeaderNames:
    """The header names one scheme uses for time, nonce and signature."""

    time: str
    nonce: str
    signature: str


@dataclass(frozen=True, slots=True)
class SignatureHeaders:
    """The signature headers of one request, parsed and checked for form only."""

    time: int
    nonce: str
    signature: bytes


def signed_message(
    context: str,
    extra_lines: tuple[str, ...],
    method: str,
    path_qs: str,
    body: bytes,
    time: int,
    nonce: str,
) -> bytes:
    """The exact bytes a request's signature covers."""
    if not _METHOD.fullmatch(method):
        raise SignatureRefused("bad method")
    if not path_qs.startswith("/") or any(c in path_qs for c in "\r\n"):
        raise SignatureRefused("bad path")
    if any(c in line for line in (context, *extra_lines) for c in "\r\n"):
        raise SignatureRefused("a signed line may not contain a newline")
    digest = hashlib.sha256(body).hexdigest()
    text = "\n".join((context, *extra_lines, method, path_qs, digest, str(time), nonce))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (what a server decoding raw bytes with surrogateescape would hand
        # over) is no text to sign: refused like any other malformed line.
        raise SignatureRefused("a signed line is not valid Unicode") from None


def parse_headers(headers: Mapping[str, str], names: HeaderNames) -> SignatureHeaders:
    """Read the three signature headers, refusing anything malformed."""
    time_text = headers.get(names.time)
    nonce = headers.get(names.nonce)
    sig_text = headers.get(names.signature)
    if time_text is None or nonce is None or sig_text is None:
        raise SignatureRefused("signature headers are missing")
    # ASCII digits only: str.isdigit() also passes superscripts and other Unicode digits,
    # which int() then refuses with a ValueError nobody would catch.
    if not _TIME.fullmatch(time_text):
        raise SignatureRefused(f"{names.time} must be integer unix seconds")
    if not _NONCE.fullmatch(nonce):
        raise SignatureRefused(f"{names.nonce} must be base64url of 16 to 32 bytes")
    try:
        signature = b64decode(sig_text)
    except PasetoError:
        raise SignatureRefused(f"{names.signature} is not canonical base64url") from None
    if len(signature) != 64:
        raise SignatureRefused(f"{names.signature} must be 64 bytes")
    return SignatureHeaders(time=int(time_text), nonce=nonce, signature=signature)


def check_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        raise SignatureRefused("signature does not verify") from None


class ReplayWindow:
    """The time window and the nonce memory of one verifier.

    ``check_time`` runs before the (costly) signature check; ``remember`` only after it, so
    forged requests cannot fill the nonce memory.
    """

    def __init__(self, *, skew_s: float, not_before: float) -> None:
        self._skew = skew_s
        self._not_before = not_before
        self._seen: OrderedDict[str, int] = OrderedDict()

    def check_time(self, time: int, now: float) -> None:
        if abs(time - now) > self._skew:
            raise SignatureRefused("signature time is outside the allowed window")
        if time < int(self._not_before):
            raise SignatureRefused("signature predates this service's start; sign it again")

    def remember(self, nonce: str, time: int, now: float) -> None:
        self._forget_older_than(now - self._skew)
        if nonce in self._seen:
            raise SignatureRefused("request replayed (nonce already used)")
        self._seen[nonce] = time

    def _forget_older_than(self, horizon: float) -> None:
        # Nonces arrive roughly in time order; a stale one at the front is dropped, and one
        # signed with an older time behind a newer one stays until it is passed. Anything
        # older than the horizon would be refused by check_time anyway.
        while self._seen:
            nonce, time = next(iter(self._seen.items()))
            if time >= horizon - self._skew:
                break
            del self._seen[nonce]
