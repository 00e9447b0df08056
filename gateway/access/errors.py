"""The access layer's stable codes, its refusals and its exceptions (transport-neutral).

Every no the access layer gives carries an :class:`AccessCode`. The codes are the problem
codes of the LAN API (docs/api.md) and never change once released; what a code means on a
given transport (an HTTP status, an MQTT payload) is decided by that transport's layer, never
here. The ticket checks' :class:`~gateway.trust.reasons.Reason` values are all access codes
too, so a ticket refusal keeps its precise reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.errors import GatewayError
from gateway.trust.reasons import Reason, TicketError


class AccessCode(StrEnum):
    """Why the access layer said no."""

    # The ticket and its proof of possession (gateway.trust.reasons.Reason).
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
    WRONG_SESSION = "wrong_session"
    APPROVAL_DECLINED = "approval_declined"
    # The purpose policies (gateway.access.policy).
    PACKAGE_MISMATCH = "package_mismatch"
    CAMERA_UNAVAILABLE = "camera_unavailable"
    # The session and the gateway's condition.
    APPROVAL_DENIED = "approval_denied"
    #: The owner approved, but the ticket no longer passed a check that can change while a
    #: session waits (revoked, expired, outside its schedule, the camera lost, the clock):
    #: the session is denied instead (issue 11, finding 6).
    APPROVAL_VOIDED = "approval_voided"
    GATEWAY_RESTARTED = "gateway_restarted"
    DENIED = "denied"
    DOOR_BUSY = "door_busy"
    LOCK_UNAVAILABLE = "lock_unavailable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    # The request itself.
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    NOT_AWAITING_APPROVAL = "not_awaiting_approval"

    @classmethod
    def of(cls, reason: Reason) -> AccessCode:
        """The code of a ticket-check reason (every reason but ``ok`` is one)."""
        return cls(reason.value)

    @classmethod
    def parse(cls, text: str | None, default: AccessCode) -> AccessCode:
        """The code spelled ``text`` (a session's stored reason), else ``default``."""
        try:
            return cls(text) if text else default
        except ValueError:
            return default


@dataclass(frozen=True, slots=True)
class Refusal:
    """A no, as a value: the pure steps (admission, the session machine) return these."""

    code: AccessCode
    detail: str


class AccessError(GatewayError):
    """Base of the access layer's deliberate errors; ``code`` is an :class:`AccessCode`."""

    code = "access_error"

    def __init__(self, code: AccessCode, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]
        #: The same code, typed (``code`` is typed ``str`` by the base class).
        self.access_code = code


class AccessRefused(AccessError):
    """A request (a visitor's or an owner's act) that the gateway answers with no."""

    code = "refused"

    @classmethod
    def of(cls, refusal: Refusal) -> AccessRefused:
        return cls(refusal.code, refusal.detail or refusal.code.value)


class DocumentRejected(AccessError):
    """An owner-signed document (a revocation list, an approval) that does not verify or does
    not apply: the input is at fault, not a visitor refused (the API answers 400 for all)."""

    code = "document_rejected"

    @classmethod
    def of(cls, exc: GatewayError, what: str) -> DocumentRejected:
        code = AccessCode.of(exc.reason) if isinstance(exc, TicketError) else AccessCode.BAD_TOKEN
        return cls(code, f"{what} refused: {exc.message}")
