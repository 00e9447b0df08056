"""Owner approvals: the owner's live yes or no to one access session (the survey flow).

A ticket with ``"approval": "owner"`` does not open the door on its own: the gateway holds
the session in ``awaiting_approval`` and the owner, watching the camera, signs an
:class:`Approval` naming that gateway, that session and that ticket. The cloud relays it but
cannot forge it. An approval lives at most :data:`MAX_APPROVAL_LIFETIME`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.trust.claims import IDENTIFIER, ClaimReader, format_time, malformed
from gateway.trust.envelope import TokenKind, open_owner_signed, seal
from gateway.trust.keys import TrustAnchors
from gateway.trust.ticket import SCHEMA_VERSION

MAX_APPROVAL_LIFETIME = timedelta(minutes=15)


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Approval:
    aud: str
    session: str
    jti: str
    decision: Decision
    iat: datetime
    exp: datetime

    def to_claims(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "aud": self.aud,
            "session": self.session,
            "jti": self.jti,
            "decision": self.decision.value,
            "iat": format_time(self.iat),
            "exp": format_time(self.exp),
        }


def approval_from_claims(claims: dict[str, Any]) -> Approval:
    reader = ClaimReader(claims, "approval")
    if reader.raw("v", required=True) != SCHEMA_VERSION:
        malformed("unknown approval schema version")
    approval = Approval(
        aud=reader.req_text("aud", pattern=IDENTIFIER),
        session=reader.req_text("session", pattern=IDENTIFIER),
        jti=reader.req_text("jti", pattern=IDENTIFIER),
        decision=Decision(reader.choice("decision", tuple(d.value for d in Decision))),
        iat=reader.time("iat"),
        exp=reader.time("exp"),
    )
    reader.finish()
    if not timedelta(0) < approval.exp - approval.iat <= MAX_APPROVAL_LIFETIME:
        malformed("an approval lives more than 0 and at most 15 minutes")
    return approval


def sign_approval(approval: Approval, owner_secret_key: bytes) -> str:
    claims = approval.to_claims()
    approval_from_claims(claims)
    return seal(TokenKind.APPROVAL, claims, owner_secret_key)


def decode_approval(token: str, anchors: TrustAnchors) -> Approval:
    """Check an approval's owner signature and shape. Raises TicketError with the reason."""
    return approval_from_claims(open_owner_signed(token, TokenKind.APPROVAL, anchors))
