"""How every Threshold token is wrapped: PASETO v4.public, a typed implicit assertion, a footer.

Four kinds of token are signed with the same owner key (tickets, issuer certificates,
revocation lists, approvals). Each kind signs under its own implicit assertion
(``threshold-ticket-v1`` ...), so a token of one kind can never verify as another. The footer
is a small JSON object ``{"kid": ...}`` naming the signing key, plus ``"cert"`` (the issuer
certificate token) on a delegated ticket. Its size and shape are checked before any signature
work: a token longer than :data:`~gateway.trust.claims.MAX_TOKEN_CHARS` is refused outright.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

from gateway.trust import paseto
from gateway.trust.claims import MAX_TOKEN_CHARS, ClaimReader, decode_object, encode_object
from gateway.trust.keys import SECRET_KEY_LEN, TrustAnchors, key_id, public_key_of
from gateway.trust.reasons import Reason, TicketError

MAX_REVOCATIONS_CHARS = 131072


class TokenKind(Enum):
    """Each kind's implicit assertion (signed, never transmitted)."""

    TICKET = b"threshold-ticket-v1"
    ISSUER_CERTIFICATE = b"threshold-issuer-certificate-v1"
    REVOCATION_LIST = b"threshold-revocations-v2"
    # Read only to carry a list held before the upgrade over into v2 (it has no audience).
    LEGACY_REVOCATION_LIST = b"threshold-revocations-v1"
    APPROVAL = b"threshold-approval-v1"

    @property
    def max_chars(self) -> int:
        # A revocation list may name many ids; everything else stays small.
        revocations = (TokenKind.REVOCATION_LIST, TokenKind.LEGACY_REVOCATION_LIST)
        return MAX_REVOCATIONS_CHARS if self in revocations else MAX_TOKEN_CHARS


@dataclass(frozen=True, slots=True)
class Footer:
    kid: str
    cert: str | None = None

    def encode(self) -> bytes:
        value: dict[str, Any] = {"kid": self.kid}
        if self.cert is not None:
            value["cert"] = self.cert
        return encode_object(value)


def seal(
    kind: TokenKind, claims: dict[str, Any], secret_key: bytes, cert: str | None = None
) -> str:
    """Sign ``claims`` as a token of ``kind``; the footer names the signing key."""
    if len(secret_key) != SECRET_KEY_LEN:
        raise paseto.PasetoError("secret key must be 64 bytes (seed || public key)")
    footer = Footer(key_id(public_key_of(secret_key)), cert)
    token = paseto.sign(encode_object(claims), secret_key, footer.encode(), kind.value)
    if len(token) > kind.max_chars:
        raise TicketError(Reason.BAD_TOKEN, f"token longer than {kind.max_chars} characters")
    return token


@dataclass(frozen=True, slots=True)
class Envelope:
    """A token taken apart, its footer read, nothing verified yet."""

    parsed: paseto.ParsedToken
    footer: Footer
    kind: TokenKind


@lru_cache(maxsize=256)
def _footer(footer_text: str | None) -> tuple[bytes, Footer]:
    # Every ticket of one issuer carries the same footer (kid and certificate), so decoding
    # it is cached; it is a pure function of its text and is authenticated by each signature.
    raw = paseto.b64decode(footer_text) if footer_text is not None else b""
    reader = ClaimReader(decode_object(raw), "footer")
    kid = reader.req_text("kid", max_len=64)
    cert = reader.text("cert", max_len=MAX_TOKEN_CHARS, required=False)
    reader.finish()
    return raw, Footer(kid, cert)


def unwrap(token: str, kind: TokenKind) -> Envelope:
    """Parse a token of ``kind`` and read its footer, unverified; bad_token if malformed."""
    if not isinstance(token, str) or len(token) > kind.max_chars:
        raise TicketError(Reason.BAD_TOKEN, "token missing or too long")
    try:
        body_text, footer_text = paseto.split(token)
        body = paseto.b64decode(body_text)
        if len(body) < paseto.SIGNATURE_LEN:
            raise paseto.PasetoError("token too short")
        raw_footer, footer = _footer(footer_text)
    except (paseto.PasetoError, TicketError) as exc:
        raise TicketError(Reason.BAD_TOKEN, f"bad token: {exc}") from exc
    parsed = paseto.ParsedToken(
        body[: -paseto.SIGNATURE_LEN], body[-paseto.SIGNATURE_LEN :], raw_footer
    )
    return Envelope(parsed, footer, kind)


def open_envelope(envelope: Envelope, public_key: bytes) -> dict[str, Any]:
    """Verify an unwrapped token under ``public_key`` and decode its claims strictly."""
    try:
        message = paseto.verify_parsed(envelope.parsed, public_key, envelope.kind.value)
    except paseto.SignatureMismatch as exc:
        raise TicketError(Reason.BAD_SIGNATURE, "signature does not verify") from exc
    except paseto.PasetoError as exc:
        raise TicketError(Reason.BAD_TOKEN, f"bad token: {exc}") from exc
    return decode_object(message)


def open_owner_signed(token: str, kind: TokenKind, anchors: TrustAnchors) -> dict[str, Any]:
    """Verify a token only the owner signs (certificate, revocation list, approval).

    Raises TicketError: bad_token (malformed, or carrying a certificate), unknown_key (not an
    owner anchor's kid), bad_signature or malformed_claims.
    """
    envelope = unwrap(token, kind)
    if envelope.footer.cert is not None:
        raise TicketError(Reason.BAD_TOKEN, "only tickets carry a certificate")
    owner_key = anchors.by_kid.get(envelope.footer.kid)
    if owner_key is None:
        raise TicketError(Reason.UNKNOWN_KEY, "not signed by a trusted owner key")
    return open_envelope(envelope, owner_key)
