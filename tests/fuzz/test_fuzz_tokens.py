"""Fuzzing the token decoders: PASETO v4.public, the strict claims decoder, the envelope
(footer, kid, certificate) and the four signed documents (ticket, issuer certificate,
revocation list, approval). Only :class:`~gateway.trust.paseto.PasetoError` (the PASETO layer)
or :class:`~gateway.trust.reasons.TicketError` (everything above it) may escape; the door's
own entry point, :func:`~gateway.trust.verification.check_ticket`, never raises at all.

The structured tests sign almost-right claims with the owner's real key, so the input gets
past the signature and reaches the claim readers, where a wrong type is most likely to
surface as a stray exception.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.clients.lan import unverified_claims
from gateway.errors import GatewayError
from gateway.trust import paseto
from gateway.trust.approval import Approval, Decision, decode_approval
from gateway.trust.certificate import verify_certificate
from gateway.trust.claims import decode_object
from gateway.trust.envelope import TokenKind, open_owner_signed, seal, unwrap
from gateway.trust.reasons import TicketError
from gateway.trust.revocation import verify_legacy_revocations, verify_revocations
from gateway.trust.schedule import WeeklyWindow
from gateway.trust.ticket import Delivery, package_hash
from gateway.trust.verification import check_ticket, verify_approval
from tests.fuzz.fuzzing import FUZZ, JSON, mutated, only
from tests.support.tickets import DOOR, GATEWAY, NOW, ZONE, Household, revocation_list

HOME = Household()
ANCHORS = HOME.anchors
TICKET = HOME.ticket(
    iss="owner",
    delivery=Delivery("order-1", (package_hash("PKG-1"),)),
    schedule=(WeeklyWindow(frozenset({0, 2}), 60, 600),),
).to_claims()
CERT = HOME.certificate().to_claims()
REVOCATIONS = revocation_list(3, jti=("t-1",), sub=("ex-cleaner",)).to_claims()
APPROVAL = Approval(
    GATEWAY, "s-1", "t-0001", Decision.APPROVE, NOW, NOW + timedelta(minutes=5)
).to_claims()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


#: Text that looks like a token: the right prefix, base64url-ish parts, maybe a footer.
TOKENISH = st.builds(
    lambda body, footer, sep: "v4.public." + b64u(body) + (sep + footer if footer else ""),
    st.binary(max_size=160),
    st.one_of(st.none(), st.text(max_size=60), st.binary(max_size=80).map(b64u)),
    st.sampled_from([".", "..", ""]),
)
TEXT = st.text(max_size=300) | TOKENISH


@FUZZ
@given(TEXT, st.binary(min_size=0, max_size=40))
def test_paseto_parsing_raises_only_paseto_errors(token: str, key: bytes) -> None:
    only(paseto.PasetoError, lambda: paseto.parse(token))
    only(paseto.PasetoError, lambda: paseto.peek(token))
    only(paseto.PasetoError, lambda: paseto.verify(token, key))
    only(paseto.PasetoError, lambda: paseto.verify(token, bytes(32), b"footer", b"ia"))


@FUZZ
@given(st.binary(max_size=300) | JSON.map(lambda v: repr(v).encode()))
def test_claims_decoding_raises_only_ticket_errors(data: bytes) -> None:
    only(TicketError, lambda: decode_object(data))


@FUZZ
@given(TEXT, st.sampled_from(list(TokenKind)))
def test_envelopes_raise_only_ticket_errors(token: str, kind: TokenKind) -> None:
    only(TicketError, lambda: unwrap(token, kind))
    only(TicketError, lambda: open_owner_signed(token, kind, ANCHORS))


@FUZZ
@given(TEXT)
def test_every_document_decoder_raises_only_ticket_errors(token: str) -> None:
    check(token)


def check(token: str) -> None:
    """Every decoder that takes a token from outside, on ``token``."""
    verdict = check_ticket(
        token, anchors=ANCHORS, gateway_id=GATEWAY, door=DOOR, now=NOW, zone=ZONE
    )
    assert verdict.allowed in (True, False)
    HOME.verify(token)  # the whole door decision, proof included: returns a verdict
    only(TicketError, lambda: verify_certificate(token, ANCHORS))
    only(TicketError, lambda: verify_revocations(token, ANCHORS, gateway_id=GATEWAY))
    only(TicketError, lambda: verify_legacy_revocations(token, ANCHORS))
    only(TicketError, lambda: decode_approval(token, ANCHORS))
    verify_approval(
        token, anchors=ANCHORS, gateway_id=GATEWAY, session_id="s-1", ticket_id="t-0001", now=NOW
    )


def owner_signed(kind: TokenKind, claims: dict[str, Any]) -> str | None:
    return only(TicketError, lambda: seal(kind, claims, HOME.owner))


@FUZZ
@given(mutated(TICKET, tuple(TICKET)))
# A claim that is not valid Unicode (what Python makes of a command-line argument that is not
# UTF-8): signing raised UnicodeEncodeError, `threshold ticket issue --subject $'\xff'` an
# internal error (bug found here).
@example({**TICKET, "sub": "\udcff"})
def test_signed_tickets_with_odd_claims_raise_nothing_stray(claims: dict[str, Any]) -> None:
    token = owner_signed(TokenKind.TICKET, claims)
    if token is not None:
        check(token)


@FUZZ
@given(mutated(CERT, tuple(CERT)), mutated(TICKET, ("iss", "purpose", "door", "exp", "uses")))
def test_delegated_tickets_with_odd_certificates_raise_nothing_stray(
    cert: dict[str, Any], ticket: dict[str, Any]
) -> None:
    cert_token = owner_signed(TokenKind.ISSUER_CERTIFICATE, cert)
    if cert_token is None:
        return
    check(cert_token)
    token = only(TicketError, lambda: seal(TokenKind.TICKET, ticket, HOME.issuer, cert_token))
    if token is not None:
        check(token)


@FUZZ
@given(
    mutated(REVOCATIONS, tuple(REVOCATIONS)),
    st.sampled_from([TokenKind.REVOCATION_LIST, TokenKind.LEGACY_REVOCATION_LIST]),
)
def test_signed_revocation_lists_with_odd_claims_raise_nothing_stray(
    claims: dict[str, Any], kind: TokenKind
) -> None:
    token = owner_signed(kind, claims)
    if token is not None:
        check(token)


@FUZZ
@given(mutated(APPROVAL, tuple(APPROVAL)))
def test_signed_approvals_with_odd_claims_raise_nothing_stray(claims: dict[str, Any]) -> None:
    token = owner_signed(TokenKind.APPROVAL, claims)
    if token is not None:
        check(token)


@FUZZ
@given(TEXT)
# A payload nested past the JSON parser's depth: RecursionError escaped the holder's own
# reading of its ticket id (bug found here).
@example("v4.public." + b64u(b"[" * 100_000 + bytes(64)))
def test_the_holders_unverified_reading_raises_only_gateway_errors(token: str) -> None:
    claims = only(GatewayError, lambda: unverified_claims(token))
    assert claims is None or isinstance(claims, dict)
