"""Issuer certificates: the owner's delegation of ticket issuing to a company (docs/tickets.md §4).

An :class:`IssuerCertificate` is an owner-signed token naming the issuer's public key and
capping what its tickets may do: doors, purposes, hours of the day (gateway time zone), the
not-before/not-after window, the longest ticket lifetime and the most uses. It travels in the
footer of every ticket the issuer signs, so a new issuer works with the gateway offline.
Without ``purposes`` a certificate allows every purpose but ``emergency``: emergency tickets
need the owner to name that purpose in the certificate, never by default.
The chain is exactly owner -> certificate -> ticket: a certificate must be signed by an owner
anchor and may not itself carry a certificate (nobody re-delegates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from gateway.trust import paseto
from gateway.trust.claims import (
    IDENTIFIER,
    NAME,
    ClaimReader,
    decode_object,
    format_time,
    malformed,
)
from gateway.trust.envelope import Envelope, TokenKind, seal, unwrap
from gateway.trust.keys import TrustAnchors, decode_public_key
from gateway.trust.paseto import b64encode
from gateway.trust.reasons import Reason, TicketError
from gateway.trust.schedule import WeeklyWindow, format_hours, parse_hours
from gateway.trust.ticket import MAX_USES, SCHEMA_VERSION, Purpose

MAX_CERTIFICATE_DAYS = 400
_PURPOSES = frozenset(p.value for p in Purpose)


@dataclass(frozen=True, slots=True)
class IssuerCertificate:
    sub: str
    key: bytes = field(repr=False)
    aud: str
    jti: str
    iat: datetime
    nbf: datetime
    exp: datetime
    doors: tuple[str, ...] | None = None
    purposes: tuple[Purpose, ...] | None = None
    hours: WeeklyWindow | None = None
    max_ticket_s: int | None = None
    max_uses: int | None = None

    def to_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "iss": "owner",
            "sub": self.sub,
            "key": b64encode(self.key),
            "aud": self.aud,
            "jti": self.jti,
            "iat": format_time(self.iat),
            "nbf": format_time(self.nbf),
            "exp": format_time(self.exp),
        }
        if self.doors is not None:
            claims["doors"] = list(self.doors)
        if self.purposes is not None:
            claims["purposes"] = [p.value for p in self.purposes]
        if self.hours is not None:
            claims["hours"] = format_hours(self.hours)
        if self.max_ticket_s is not None:
            claims["max_ticket_s"] = self.max_ticket_s
        if self.max_uses is not None:
            claims["max_uses"] = self.max_uses
        return claims


def allowances(cert: IssuerCertificate) -> list[str]:
    """What ``cert`` lets its issuer's tickets do, one line per cap (for the owner to read)."""
    if cert.purposes is None:
        purposes = ", ".join(p.value for p in Purpose if p is not Purpose.EMERGENCY)
        purposes += " (every purpose but emergency)"
    else:
        purposes = ", ".join(p.value for p in cert.purposes)
    emergency = cert.purposes is not None and Purpose.EMERGENCY in cert.purposes
    return [
        f"issuer: {cert.sub} (certificate {cert.jti}) on gateway {cert.aud}",
        f"doors: {', '.join(cert.doors) if cert.doors is not None else 'any'}",
        f"purposes: {purposes}",
        f"emergency tickets: {'ALLOWED (named explicitly)' if emergency else 'no'}",
        f"valid: {format_time(cert.nbf)} to {format_time(cert.exp)}",
        f"hours: {format_hours(cert.hours) if cert.hours is not None else 'any'}",
        "longest ticket: "
        + (
            f"{cert.max_ticket_s / 3600:g} h"
            if cert.max_ticket_s is not None
            else "7 days (tickets' own cap)"
        ),
        "uses per ticket: "
        + (f"at most {cert.max_uses}" if cert.max_uses is not None else f"at most {MAX_USES}"),
    ]


def certificate_from_claims(claims: dict[str, Any]) -> IssuerCertificate:
    reader = ClaimReader(claims, "certificate")
    if reader.raw("v", required=True) != SCHEMA_VERSION:
        malformed("unknown certificate schema version")
    if reader.raw("iss", required=True) != "owner":
        malformed("certificate.iss must be 'owner'")
    purposes = reader.text_list("purposes", max_items=8, required=False)
    if purposes is not None and any(p not in _PURPOSES for p in purposes):
        malformed("certificate.purposes has an unknown purpose")
    hours = reader.text("hours", max_len=11, required=False)
    max_ticket_s = reader.integer("max_ticket_s", low=1, high=7 * 86400, default=0)
    max_uses = reader.integer("max_uses", low=1, high=MAX_USES, default=0)
    cert = IssuerCertificate(
        sub=reader.req_text("sub", pattern=NAME),
        key=decode_public_key(reader.req_text("key", max_len=43)),
        aud=reader.req_text("aud", pattern=IDENTIFIER),
        jti=reader.req_text("jti", pattern=IDENTIFIER),
        iat=reader.time("iat"),
        nbf=reader.time("nbf"),
        exp=reader.time("exp"),
        doors=reader.text_list("doors", pattern=IDENTIFIER, required=False),
        purposes=None if purposes is None else tuple(Purpose(p) for p in purposes),
        hours=None if hours is None else parse_hours(hours),
        max_ticket_s=max_ticket_s or None,
        max_uses=max_uses or None,
    )
    reader.finish()
    if cert.exp <= cert.nbf:
        malformed("certificate.exp must be after certificate.nbf")
    if (cert.exp - cert.nbf).days > MAX_CERTIFICATE_DAYS:
        malformed(f"a certificate may live at most {MAX_CERTIFICATE_DAYS} days")
    return cert


def sign_certificate(cert: IssuerCertificate, owner_secret_key: bytes) -> str:
    claims = cert.to_claims()
    certificate_from_claims(claims)
    return seal(TokenKind.ISSUER_CERTIFICATE, claims, owner_secret_key)


@lru_cache(maxsize=128)
def _unwrap_certificate(token: str) -> Envelope:
    return unwrap(token, TokenKind.ISSUER_CERTIFICATE)


@lru_cache(maxsize=128)
def _certificate_from_message(message: bytes) -> IssuerCertificate:
    return certificate_from_claims(decode_object(message))


def verify_certificate(token: str, anchors: TrustAnchors) -> IssuerCertificate:
    """Check a certificate's owner signature and shape (not its validity window).

    Raises TicketError: bad_token, unknown_key, bad_signature or malformed_claims.

    One certificate rides in every ticket its issuer signs, so parsing it (base64, footer,
    claims: pure functions of its bytes) is cached. The owner's signature is still checked
    on every call: a cache hit never stands in for a verification.
    """
    envelope = _unwrap_certificate(token)
    if envelope.footer.cert is not None:
        raise TicketError(Reason.BAD_TOKEN, "a certificate cannot carry a certificate")
    owner_key = anchors.by_kid.get(envelope.footer.kid)
    if owner_key is None:
        raise TicketError(Reason.UNKNOWN_KEY, "certificate not signed by a trusted owner key")
    try:
        message = paseto.verify_parsed(envelope.parsed, owner_key, envelope.kind.value)
    except paseto.PasetoError as exc:
        raise TicketError(Reason.BAD_SIGNATURE, "certificate signature does not verify") from exc
    return _certificate_from_message(message)
