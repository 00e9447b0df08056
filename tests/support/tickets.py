"""Shared ticket fixtures: a household with an owner, an issuer and a holder, and a clock."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.trust.certificate import IssuerCertificate, sign_certificate
from gateway.trust.keys import TrustAnchors, generate_secret_key, public_key_of
from gateway.trust.proof import ChallengeRecord, sign_proof
from gateway.trust.revocation import Revocation, RevocationList, RevokedKind, key_text
from gateway.trust.ticket import Purpose, Ticket, sign_ticket
from gateway.trust.verification import Verdict, verify_ticket

GATEWAY = "gw-home-1"
DOOR = "front"
NOW = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # a Wednesday
ZONE = ZoneInfo("Europe/London")


def revocation_list(
    seq: int,
    *,
    aud: tuple[str, ...] = (GATEWAY,),
    iat: datetime = NOW,
    until: datetime = NOW + timedelta(days=30),
    jti: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    keys: tuple[bytes, ...] = (),
) -> RevocationList:
    """A format 2 list revoking what is named, every entry until ``until``."""
    entries = {Revocation(RevokedKind.TICKET, j, until) for j in jti}
    entries |= {Revocation(RevokedKind.HOLDER, s, until) for s in sub}
    entries |= {Revocation(RevokedKind.KEY, key_text(k), until) for k in keys}
    return RevocationList(frozenset(aud), seq, iat, frozenset(entries))


@dataclass
class Household:
    owner: bytes = field(default_factory=generate_secret_key)
    issuer: bytes = field(default_factory=generate_secret_key)
    holder: bytes = field(default_factory=generate_secret_key)

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors.of(public_key_of(self.owner))

    def certificate(self, **changes: Any) -> IssuerCertificate:
        base = IssuerCertificate(
            sub="ACME Parcels",
            key=public_key_of(self.issuer),
            aud=GATEWAY,
            jti="cert-acme-1",
            iat=NOW - timedelta(days=1),
            nbf=NOW - timedelta(days=1),
            exp=NOW + timedelta(days=90),
            doors=(DOOR,),
            purposes=(Purpose.DELIVERY, Purpose.SURVEY),
            max_ticket_s=24 * 3600,
            max_uses=2,
        )
        return dataclasses.replace(base, **changes)

    def ticket(self, **changes: Any) -> Ticket:
        base = Ticket(
            iss="ACME Parcels",
            sub="Alice Courier",
            aud=GATEWAY,
            jti="t-0001",
            iat=NOW - timedelta(hours=1),
            nbf=NOW - timedelta(hours=1),
            exp=NOW + timedelta(hours=3),
            door=DOOR,
            purpose=Purpose.DELIVERY,
            cnf=public_key_of(self.holder),
        )
        return dataclasses.replace(base, **changes)

    def delegated(self, ticket: Ticket | None = None, cert: IssuerCertificate | None = None) -> str:
        cert_token = sign_certificate(cert or self.certificate(), self.owner)
        return sign_ticket(ticket or self.ticket(), self.issuer, cert_token)

    def owner_ticket(self, ticket: Ticket | None = None) -> str:
        return sign_ticket(ticket or self.ticket(iss="owner"), self.owner)

    def challenge(self, now: datetime = NOW) -> ChallengeRecord:
        return ChallengeRecord(bytes(range(32)), GATEWAY, now + timedelta(seconds=10))

    def proof(
        self,
        challenge: ChallengeRecord,
        jti: str = "t-0001",
        action: str = "open",
        key: bytes | None = None,
    ) -> bytes:
        return sign_proof(key or self.holder, GATEWAY, challenge.nonce, jti, action)

    def verify(self, token: str, *, now: datetime = NOW, jti: str = "t-0001", **kw: Any) -> Verdict:
        challenge = kw.pop("challenge", self.challenge(now))
        proof = kw.pop("proof", None)
        if proof is None and challenge is not None:
            proof = self.proof(challenge, jti)
        args: dict[str, Any] = {
            "anchors": self.anchors,
            "gateway_id": GATEWAY,
            "door": DOOR,
            "now": now,
            "zone": ZONE,
            "challenge": challenge,
            "proof": proof,
        }
        args.update(kw)
        return verify_ticket(token, **args)
