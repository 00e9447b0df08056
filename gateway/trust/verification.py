"""Ticket verification: may this phone open this door now? The public face of the ticket system.

Theory of operation. :func:`verify_ticket` is a pure function of a token and facts: the
owner's trust anchors, this gateway's id, the door, the time and the time floor, the
challenge the gateway issued, the holder's proof, the current revocation list and how often
the ticket has been used. It returns a :class:`Verdict` naming the first check that failed,
in this fixed order (docs/tickets.md, "Verification order"):

1. envelope: size, PASETO shape, footer                     -> ``bad_token``
2. chain: the kid is an owner anchor, or the footer carries an owner-signed issuer
   certificate whose key is the kid (depth exactly 0 or 1)   -> ``unknown_key``
3. signatures of certificate and ticket                      -> ``bad_signature``
4. claims of both, schema version 1                          -> ``malformed_claims``
5. the clock is above the persisted floor                    -> ``clock_untrusted``
   (emergency tickets go on, with ``alarm`` set: checks 6-11 then hold if they hold at
   either the clock or the floor, so the clock never refuses one; issue 11, finding 1)
6. revocation of ticket id, certificate id, holder, keys     -> ``revoked``
7. audience of ticket and certificate                        -> ``wrong_gateway``
8. door                                                      -> ``wrong_door``
9. the ticket lies within its certificate                    -> ``certificate_exceeded``
10. validity window, allowing the skew                       -> ``not_yet_valid``/``expired``
11. the weekly schedule, in the gateway's time zone          -> ``outside_schedule``
12. uses so far                                              -> ``uses_exhausted``
13. the challenge and the holder's proof of possession       -> ``unknown_challenge``,
    ``challenge_expired``, ``bad_proof``

The store owns state: the gateway service atomically consumes the challenge and reads the use
count, passes them in as facts, and records the use when the verdict allows. Nothing here
does I/O or keeps state, except caches of parsed keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from gateway.trust import schedule
from gateway.trust.approval import Approval, Decision, decode_approval, sign_approval
from gateway.trust.certificate import IssuerCertificate, sign_certificate, verify_certificate
from gateway.trust.clock import DEFAULT_SKEW, clock_trusted, plausible_times
from gateway.trust.envelope import TokenKind, open_envelope, unwrap
from gateway.trust.keys import TrustAnchors, key_id
from gateway.trust.proof import (
    ChallengeRecord,
    new_challenge,
    proof_message,
    proof_valid,
    sign_proof,
)
from gateway.trust.reasons import Reason, TicketError
from gateway.trust.revocation import (
    HeldRevocations,
    RevocationList,
    revoked,
    sign_revocations,
)
from gateway.trust.revocation import verify_revocations as decode_revocations
from gateway.trust.ticket import Purpose, Ticket, sign_ticket, ticket_from_claims

__all__ = [
    "Approval",
    "ApprovalVerdict",
    "ChallengeRecord",
    "Decision",
    "HeldRevocations",
    "IssuerCertificate",
    "Purpose",
    "Reason",
    "RevocationList",
    "Ticket",
    "TicketError",
    "TrustAnchors",
    "Verdict",
    "check_ticket",
    "decode_approval",
    "decode_revocations",
    "new_challenge",
    "proof_message",
    "sign_approval",
    "sign_certificate",
    "sign_proof",
    "sign_revocations",
    "sign_ticket",
    "verify_approval",
    "verify_certificate",
    "verify_holder_proof",
    "verify_ticket",
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one request: allowed or not, and why.

    ``claims`` is the decoded ticket whenever its signature verified, also on a deny (for the
    audit log). ``alarm`` is set when an emergency ticket was honoured on an untrusted clock.
    ``proof_checked`` is False for :func:`check_ticket`, which leaves the proof out.
    ``issuer_kid`` is the key id of the ticket's signer (an owner key or a certified issuer's
    key): a ticket is known by it and its ``jti`` together, never by the ``jti`` alone.
    """

    allowed: bool
    reason: Reason
    claims: Ticket | None = None
    certificate: IssuerCertificate | None = None
    alarm: bool = False
    proof_checked: bool = True
    detail: str = ""
    issuer_kid: str = ""

    def to_json(self) -> dict[str, object]:
        """A log- and API-safe summary (no token, no keys)."""
        out: dict[str, object] = {
            "allowed": self.allowed,
            "reason": self.reason.value,
            "alarm": self.alarm,
            "proof_checked": self.proof_checked,
        }
        if self.detail:
            out["detail"] = self.detail
        if self.claims is not None:
            out["jti"] = self.claims.jti
            out["sub"] = self.claims.sub
            out["purpose"] = self.claims.purpose.value
            out["door"] = self.claims.door
        if self.certificate is not None:
            out["issuer"] = self.certificate.sub
        return out


@dataclass(frozen=True, slots=True)
class _Chain:
    ticket: Ticket
    certificate: IssuerCertificate | None
    signer: bytes
    kid: str


def _open_chain(token: str, anchors: TrustAnchors) -> _Chain:
    envelope = unwrap(token, TokenKind.TICKET)
    footer = envelope.footer
    certificate: IssuerCertificate | None = None
    signer = anchors.by_kid.get(footer.kid)
    if footer.cert is not None:
        if signer is not None:
            raise TicketError(Reason.BAD_TOKEN, "an owner-signed ticket carries no certificate")
        certificate = verify_certificate(footer.cert, anchors)
        if key_id(certificate.key) != footer.kid:
            raise TicketError(Reason.UNKNOWN_KEY, "ticket not signed by the certified key")
        signer = certificate.key
    if signer is None:
        raise TicketError(Reason.UNKNOWN_KEY, "ticket signed by an unknown key")
    ticket = ticket_from_claims(open_envelope(envelope, signer))
    return _Chain(ticket, certificate, signer, footer.kid)


def _exceeds(ticket: Ticket, cert: IssuerCertificate, now: datetime, zone: tzinfo) -> str:
    """Why ``ticket`` is outside ``cert``, or "" when it lies within it."""
    if ticket.iss != cert.sub:
        return "ticket.iss is not the certified issuer"
    if cert.doors is not None and ticket.door not in cert.doors:
        return "door not in certificate"
    if cert.purposes is not None and ticket.purpose not in cert.purposes:
        return "purpose not in certificate"
    if ticket.purpose is Purpose.EMERGENCY and (
        cert.purposes is None or Purpose.EMERGENCY not in cert.purposes
    ):
        # Emergency is never implied: a certificate without purposes allows every other one.
        return "emergency not named in certificate"
    if ticket.nbf < cert.nbf or ticket.exp > cert.exp:
        return "ticket validity outside certificate validity"
    if cert.max_ticket_s is not None and (ticket.exp - ticket.nbf) > timedelta(
        seconds=cert.max_ticket_s
    ):
        return "ticket lives longer than the certificate allows"
    if cert.max_uses is not None and ticket.uses > cert.max_uses:
        return "more uses than the certificate allows"
    if cert.hours is not None:
        if ticket.schedule and not schedule.within(ticket.schedule, (cert.hours,)):
            return "schedule outside certificate hours"
        if not schedule.allows((cert.hours,), now, zone):
            return "outside certificate hours"
    return ""


def _deny(reason: Reason, chain: _Chain | None, detail: str, **kw: bool) -> Verdict:
    return Verdict(
        False,
        reason,
        chain.ticket if chain else None,
        chain.certificate if chain else None,
        detail=detail,
        issuer_kid=chain.kid if chain else "",
        **kw,
    )


def check_ticket(
    token: str,
    *,
    anchors: TrustAnchors,
    gateway_id: str,
    door: str,
    now: datetime,
    zone: tzinfo,
    revocations: HeldRevocations | None = None,
    uses_so_far: int = 0,
    time_floor: datetime | None = None,
    skew: timedelta = DEFAULT_SKEW,
) -> Verdict:
    """Every check of :func:`verify_ticket` except the challenge and proof (steps 1-12).

    An allow from here is NOT permission to open: ``proof_checked`` is False.
    """
    try:
        chain = _open_chain(token, anchors)
    except TicketError as exc:
        return Verdict(False, exc.reason, detail=exc.message, proof_checked=False)
    ticket, cert = chain.ticket, chain.certificate

    def deny(reason: Reason, detail: str, alarm: bool = False) -> Verdict:
        return _deny(reason, chain, detail, alarm=alarm, proof_checked=False)

    alarm = False
    times: tuple[datetime, ...] = (now,)
    if not clock_trusted(now, time_floor, skew):
        if ticket.purpose is not Purpose.EMERGENCY:
            return deny(Reason.CLOCK_UNTRUSTED, "the gateway clock is below its time floor")
        # Which one is wrong cannot be told from here: a clock set back, or a floor pushed
        # ahead. An emergency is never refused because of the clock (issue 11, finding 1):
        # it is judged valid if it is valid at either time, and the alarm says why.
        alarm = True
        times = plausible_times(now, time_floor, skew)
    earliest, latest = min(times), max(times)
    if revoked(
        revocations,
        ids=(ticket.jti, cert.jti) if cert else (ticket.jti,),
        subjects=(ticket.sub,),
        keys=(chain.signer, ticket.cnf),
        at=earliest,  # a revocation holds if it holds at any of the times
        skew=skew,
    ):
        return deny(Reason.REVOKED, "ticket, holder or issuer is revoked", alarm)
    if ticket.aud != gateway_id or (cert is not None and cert.aud != gateway_id):
        return deny(Reason.WRONG_GATEWAY, "ticket is for another gateway", alarm)
    if ticket.door != door:
        return deny(Reason.WRONG_DOOR, "ticket is for another door", alarm)
    if cert is not None:
        whys = [_exceeds(ticket, cert, when, zone) for when in times]
        if all(whys):
            return deny(Reason.CERTIFICATE_EXCEEDED, whys[0], alarm)
    if latest < ticket.nbf - skew:
        return deny(Reason.NOT_YET_VALID, "ticket not yet valid", alarm)
    if earliest >= ticket.exp + skew:
        return deny(Reason.EXPIRED, "ticket expired", alarm)
    if ticket.schedule and not any(schedule.allows(ticket.schedule, t, zone) for t in times):
        return deny(Reason.OUTSIDE_SCHEDULE, "outside the ticket's weekly schedule", alarm)
    if uses_so_far >= ticket.uses:
        return deny(Reason.USES_EXHAUSTED, "ticket already used up", alarm)
    return Verdict(
        True, Reason.OK, ticket, cert, alarm=alarm, proof_checked=False, issuer_kid=chain.kid
    )


def verify_holder_proof(
    ticket: Ticket,
    *,
    gateway_id: str,
    challenge: ChallengeRecord | None,
    proof: bytes | None,
    now: datetime,
    action: str = "open",
) -> Reason:
    """Check a fresh proof for an already accepted ticket (e.g. the courier's "done").

    ``challenge`` is the record the store consumed for the nonce the phone sent, or None when
    it knew no such nonce (never issued, or already used).
    """
    if challenge is None or challenge.gateway_id != gateway_id:
        return Reason.UNKNOWN_CHALLENGE
    if now >= challenge.expires_at:
        return Reason.CHALLENGE_EXPIRED
    if proof is None or not proof_valid(
        ticket.cnf, proof, gateway_id, challenge.nonce, ticket.jti, action
    ):
        return Reason.BAD_PROOF
    return Reason.OK


def verify_ticket(
    token: str,
    *,
    anchors: TrustAnchors,
    gateway_id: str,
    door: str,
    now: datetime,
    zone: tzinfo,
    challenge: ChallengeRecord | None,
    proof: bytes | None,
    action: str = "open",
    revocations: HeldRevocations | None = None,
    uses_so_far: int = 0,
    time_floor: datetime | None = None,
    skew: timedelta = DEFAULT_SKEW,
) -> Verdict:
    """The whole decision for one door request (see the module docstring for the order)."""
    verdict = check_ticket(
        token,
        anchors=anchors,
        gateway_id=gateway_id,
        door=door,
        now=now,
        zone=zone,
        revocations=revocations,
        uses_so_far=uses_so_far,
        time_floor=time_floor,
        skew=skew,
    )
    if verdict.claims is None:
        return verdict
    if not verdict.allowed:
        return verdict  # denied before the proof: proof_checked stays False
    reason = verify_holder_proof(
        verdict.claims,
        gateway_id=gateway_id,
        challenge=challenge,
        proof=proof,
        now=now,
        action=action,
    )
    return Verdict(
        reason is Reason.OK,
        reason,
        verdict.claims,
        verdict.certificate,
        verdict.alarm,
        detail="" if reason is Reason.OK else "proof of possession failed",
        issuer_kid=verdict.issuer_kid,
    )


@dataclass(frozen=True, slots=True)
class ApprovalVerdict:
    allowed: bool
    reason: Reason
    approval: Approval | None = None
    detail: str = ""


def verify_approval(
    token: str,
    *,
    anchors: TrustAnchors,
    gateway_id: str,
    session_id: str,
    ticket_id: str,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> ApprovalVerdict:
    """Whether the owner approved this session of this ticket, and the approval is current."""
    try:
        approval = decode_approval(token, anchors)
    except TicketError as exc:
        return ApprovalVerdict(False, exc.reason, detail=exc.message)
    if approval.aud != gateway_id:
        return ApprovalVerdict(False, Reason.WRONG_GATEWAY, approval, "for another gateway")
    if approval.session != session_id or approval.jti != ticket_id:
        return ApprovalVerdict(False, Reason.WRONG_SESSION, approval, "for another session")
    if now < approval.iat - skew:
        return ApprovalVerdict(False, Reason.NOT_YET_VALID, approval, "approval from the future")
    if now >= approval.exp + skew:
        return ApprovalVerdict(False, Reason.EXPIRED, approval, "approval expired")
    if approval.decision is not Decision.APPROVE:
        return ApprovalVerdict(False, Reason.APPROVAL_DECLINED, approval, "the owner said no")
    return ApprovalVerdict(True, Reason.OK, approval)
