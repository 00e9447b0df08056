"""Admission: the one decision function for a request to open a door (pure, no I/O).

:func:`admit` takes what the service gathered for one request and answers, in this order,
stopping at the first no:

1. revocations: the service has already added any owner-signed list for this gateway the
   phone carried to those it holds (a durable write, so it happens before); what is held
   comes in here;
2. the ticket: :func:`gateway.trust.verification.check_ticket` (signatures, chain, the clock
   rule against the time floor, revocation, gateway, door, validity, schedule); a token that
   does not verify is refused *unaudited* (nothing verified, so nothing is evidence);
3. the holder's proof of possession over the challenge the store consumed
   (:func:`gateway.trust.verification.verify_holder_proof`), before the ticket's verdict is
   acted on: without it the request is refused *unaudited* too (with the ticket's reason if
   the ticket is refused anyway), because a copied token must not write entries in the
   holder's name (issue 11, finding 10); the service counts these refusals;
4. the ticket's verdict: a genuine holder's ticket refused is audited;
5. the store: if it failed while taking the challenge, only an emergency ticket goes on;
6. the purpose policy (:func:`gateway.access.policy.decide`): package code, camera, the
   owner's approval, emergency alarms;
7. the door: free, or ``door_busy``;
8. the use count: the answer names the use to count, keyed on the ticket's signer and id
   (never the id alone, issue 11 finding 9), and the session's first durable write counts
   it atomically (a ticket used up there ends as ``uses_exhausted``).

The answer is :class:`Admitted` (a grant, or a wait for the owner) or :class:`Refused` (a
typed :class:`~gateway.access.errors.Refusal`, and whether it is written to the audit log).
``verify_ticket`` in ``gateway.trust.verification`` is the same ticket-and-proof check for
callers without a session (the CLI); at the door, this function is the decision.

:func:`admit_approved` is the second decision for a session that waited for the owner: when
the approval arrives, every check that can have changed while it waited is run again
(issue 11, finding 6): the ticket against the revocations held *now* (ticket, holder, issuer
key, certificate), its validity window and schedule against the clock and the time floor
*now*, and the purpose policy against the camera and the store *now*. What cannot change is
not re-run: the holder's proof (made once, over a challenge now spent), the door (the
waiting session holds it), and the use count (the session's first durable write, the
``awaiting_approval`` entry, already counted this use atomically).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from gateway.access.errors import AccessCode, Refusal
from gateway.access.policy import (
    Allow,
    AwaitApproval,
    Decision,
    GatewayFacts,
    PolicyRules,
    Refuse,
    TicketTerms,
    decide,
)
from gateway.access.session import SessionFacts
from gateway.trust.ticket import Purpose
from gateway.trust.verification import (
    ChallengeRecord,
    HeldRevocations,
    Reason,
    Ticket,
    TrustAnchors,
    check_ticket,
    verify_holder_proof,
)


@dataclass(frozen=True, slots=True)
class AccessSettings:
    gateway_id: str
    anchors: TrustAnchors
    zone: tzinfo
    rules: PolicyRules
    default_open_s: float = 60.0
    max_open_s: float = 900.0
    challenge_ttl: timedelta = timedelta(seconds=10)
    skew: timedelta = timedelta(seconds=120)
    lock_timeout_s: float = 10.0
    relock_retry_initial_s: float = 1.0
    relock_retry_max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class AccessRequest:
    ticket: str
    door: str
    nonce: bytes
    proof: bytes
    package_code: str | None = None
    revocations: str | None = None


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """Everything :func:`admit` decides on besides the request and the settings."""

    now: datetime
    session_id: str
    #: The challenge the store consumed for the request's nonce (None: unknown or used).
    challenge: ChallengeRecord | None
    #: The store failed while taking the challenge (only an emergency goes on).
    store_failed: bool
    #: Every revocation the gateway holds (the union of the lists it accepted).
    revocations: HeldRevocations | None
    time_floor: datetime | None
    camera_live: bool
    storage_writable: bool
    door_free: bool


@dataclass(frozen=True, slots=True)
class Admitted:
    facts: SessionFacts
    holder_key: bytes
    decision: Allow | AwaitApproval
    #: (issuer key id, ticket id, max uses) for the first durable write; an emergency ticket
    #: is single use whatever its ``uses`` claim says.
    use: tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Refused:
    refusal: Refusal
    #: The session the refusal is about; None when no holder was shown: nothing verified,
    #: or the holder's proof of possession failed (the service counts these).
    facts: SessionFacts | None = None
    holder_key: bytes = b""
    #: Written to the audit log (``requested -> denied``): a genuine holder's ticket refused.
    #: Not when nothing verified (garbage must not fill the disk), when the proof failed (a
    #: copied token must not write in the holder's name) or when the store is down.
    audited: bool = False


Admission = Admitted | Refused


@dataclass(frozen=True, slots=True)
class ApprovalFacts:
    """What :func:`admit_approved` decides on: the gateway's condition when the owner's
    approval arrives."""

    now: datetime
    revocations: HeldRevocations | None
    time_floor: datetime | None
    camera_live: bool
    storage_writable: bool


def admit(request: AccessRequest, facts: RequestFacts, settings: AccessSettings) -> Admission:
    """Decide one request (see the module docstring for the order)."""
    verdict = check_ticket(
        request.ticket,
        anchors=settings.anchors,
        gateway_id=settings.gateway_id,
        door=request.door,
        now=facts.now,
        zone=settings.zone,
        revocations=facts.revocations,
        uses_so_far=0,
        time_floor=facts.time_floor,
        skew=settings.skew,
    )
    ticket = verdict.claims
    if ticket is None:
        # Nothing verified: no signature, no holder. Not evidence of anything, and not
        # written to the audit log, so garbage cannot fill the disk.
        return Refused(Refusal(AccessCode.of(verdict.reason), verdict.detail))
    session = SessionFacts(
        session=facts.session_id,
        door=request.door,
        jti=ticket.jti,
        subject=ticket.sub,
        purpose=ticket.purpose.value,
        open_s=min(float(ticket.open_s), settings.max_open_s),
        issuer=ticket.iss,
    )

    def refused(code: AccessCode, detail: str) -> Refused:
        return Refused(Refusal(code, detail), session, ticket.cnf, audited=True)

    proof = verify_holder_proof(
        ticket,
        gateway_id=settings.gateway_id,
        challenge=facts.challenge,
        proof=request.proof,
        now=facts.now,
        action="open",
    )
    if proof is not Reason.OK:
        # Not shown to be the holder (a copied token is enough to get here): refused with
        # the ticket's own reason if it is refused anyway, and nothing written.
        if not verdict.allowed:
            return Refused(Refusal(AccessCode.of(verdict.reason), verdict.detail))
        return Refused(Refusal(AccessCode.of(proof), "proof of possession failed"))
    if not verdict.allowed:
        return refused(AccessCode.of(verdict.reason), verdict.detail)
    emergency = ticket.purpose is Purpose.EMERGENCY
    if facts.store_failed and not emergency:
        detail = "the gateway's store failed; failing closed"
        return Refused(Refusal(AccessCode.STORAGE_UNAVAILABLE, detail), session, ticket.cnf)
    decision = _purpose_decision(
        ticket, request, facts.camera_live, facts.storage_writable, settings, verdict.alarm
    )
    if isinstance(decision, Refuse):
        return refused(decision.code, decision.detail)
    if not facts.door_free:
        return refused(AccessCode.DOOR_BUSY, f"door {request.door} is in use")
    use = (verdict.issuer_kid, ticket.jti, 1 if emergency else ticket.uses)
    return Admitted(session, ticket.cnf, decision, use)


def admit_approved(
    request: AccessRequest, facts: ApprovalFacts, settings: AccessSettings
) -> Refusal | None:
    """The owner approved a waiting session: None if it may still open, else why not (the
    first check that no longer holds, with its own code; see the module docstring)."""
    verdict = check_ticket(
        request.ticket,
        anchors=settings.anchors,
        gateway_id=settings.gateway_id,
        door=request.door,
        now=facts.now,
        zone=settings.zone,
        revocations=facts.revocations,
        uses_so_far=0,  # this session's use is already counted (see the module docstring)
        time_floor=facts.time_floor,
        skew=settings.skew,
    )
    ticket = verdict.claims
    if ticket is None or not verdict.allowed:
        return Refusal(AccessCode.of(verdict.reason), verdict.detail)
    decision = _purpose_decision(
        ticket, request, facts.camera_live, facts.storage_writable, settings, verdict.alarm
    )
    if isinstance(decision, Refuse):
        return Refusal(decision.code, decision.detail)
    return None


def _purpose_decision(
    ticket: Ticket,
    request: AccessRequest,
    camera_live: bool,
    storage_writable: bool,
    settings: AccessSettings,
    clock_alarm: bool,
) -> Decision:
    """The purpose policy over the gateway's facts of this moment: the same call at the
    request and again when the owner approves."""
    return decide(
        _terms(ticket),
        package_code=request.package_code,
        facts=GatewayFacts(camera_live=camera_live, storage_writable=storage_writable),
        rules=settings.rules,
        clock_alarm=clock_alarm,
    )


def _terms(ticket: Ticket) -> TicketTerms:
    return TicketTerms(
        purpose=ticket.purpose,
        package_hashes=tuple(ticket.delivery.packages) if ticket.delivery else (),
        owner_approval=ticket.needs_owner_approval,
        camera_required=ticket.camera.value == "required",
    )
