"""Why a ticket, certificate, revocation list or approval was refused: the stable reason codes.

The codes are part of the public contract (docs/tickets.md, "Reason codes"): the LAN API
returns them as problem+json ``code`` values and phone apps key on them. Never rename one.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.errors import GatewayError


class Reason(StrEnum):
    """The outcome of a verification: ``ok`` or the first check that failed."""

    OK = "ok"
    BAD_TOKEN = "bad_token"  # noqa: S105 - a reason code, not a secret
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED_CLAIMS = "malformed_claims"
    CLOCK_UNTRUSTED = "clock_untrusted"
    REVOKED = "revoked"
    WRONG_GATEWAY = "wrong_gateway"
    WRONG_DOOR = "wrong_door"
    CERTIFICATE_EXCEEDED = "certificate_exceeded"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    OUTSIDE_SCHEDULE = "outside_schedule"
    USES_EXHAUSTED = "uses_exhausted"
    UNKNOWN_CHALLENGE = "unknown_challenge"
    CHALLENGE_EXPIRED = "challenge_expired"
    BAD_PROOF = "bad_proof"
    # Owner approvals (the survey flow).
    WRONG_SESSION = "wrong_session"
    APPROVAL_DECLINED = "approval_declined"


class TicketError(GatewayError):
    """A token was refused; ``reason`` says why and ``code`` is its string value."""

    code = "ticket_refused"

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        # Shadow the class-level code with the precise, stable reason.
        self.code = reason.value  # type: ignore[misc]
