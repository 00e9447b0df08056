"""Owner-signed revocation lists and the no-rollback rule (docs/tickets.md §7).

A :class:`RevocationList` carries a sequence number and three sets: revoked ticket ids (also
certificate ids), revoked holder names, and revoked keys (issuer keys, which revokes a whole
company, and holder keys, which revokes a lost phone). The gateway keeps the list with the
highest ``seq``; :func:`apply` refuses an older one, so an attacker cannot replay a stale list
to un-revoke a ticket. A list with the same ``seq`` but different contents is refused too:
the owner never signs two, so it is an equivocation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.trust.claims import IDENTIFIER, NAME, ClaimReader, format_time, malformed
from gateway.trust.envelope import TokenKind, open_owner_signed, seal
from gateway.trust.keys import TrustAnchors, decode_public_key
from gateway.trust.paseto import b64encode
from gateway.trust.reasons import Reason, TicketError
from gateway.trust.ticket import SCHEMA_VERSION

MAX_ENTRIES = 1000
MAX_SEQ = 2**53 - 1


@dataclass(frozen=True, slots=True)
class RevocationList:
    seq: int
    iat: datetime
    jti: frozenset[str] = frozenset()
    sub: frozenset[str] = frozenset()
    keys: frozenset[bytes] = field(default=frozenset(), repr=False)

    def to_claims(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "seq": self.seq,
            "iat": format_time(self.iat),
            "jti": sorted(self.jti),
            "sub": sorted(self.sub),
            "keys": sorted(b64encode(k) for k in self.keys),
        }


def revocations_from_claims(claims: dict[str, Any]) -> RevocationList:
    reader = ClaimReader(claims, "revocations")
    if reader.raw("v", required=True) != SCHEMA_VERSION:
        malformed("unknown revocation list schema version")
    keys = reader.text_list("keys", max_items=MAX_ENTRIES)
    rl = RevocationList(
        seq=reader.integer("seq", low=0, high=MAX_SEQ),
        iat=reader.time("iat"),
        jti=frozenset(reader.text_list("jti", pattern=IDENTIFIER, max_items=MAX_ENTRIES) or ()),
        sub=frozenset(reader.text_list("sub", pattern=NAME, max_items=MAX_ENTRIES) or ()),
        keys=frozenset(decode_public_key(k) for k in keys or ()),
    )
    reader.finish()
    return rl


def sign_revocations(rl: RevocationList, owner_secret_key: bytes) -> str:
    claims = rl.to_claims()
    revocations_from_claims(claims)
    return seal(TokenKind.REVOCATION_LIST, claims, owner_secret_key)


def verify_revocations(token: str, anchors: TrustAnchors) -> RevocationList:
    """Check an owner-signed revocation list. Raises TicketError with the reason."""
    return revocations_from_claims(open_owner_signed(token, TokenKind.REVOCATION_LIST, anchors))


def apply(current: RevocationList | None, incoming: RevocationList) -> RevocationList:
    """The list to keep after receiving ``incoming``; refuses rollback (stale_revocations)."""
    if current is None or incoming.seq > current.seq:
        return incoming
    if incoming.seq == current.seq and incoming == current:
        return current
    raise TicketError(
        Reason.STALE_REVOCATIONS,
        f"revocation list seq {incoming.seq} does not supersede held seq {current.seq}",
    )


def revoked(
    rl: RevocationList | None,
    *,
    ids: tuple[str, ...],
    subjects: tuple[str, ...],
    keys: tuple[bytes, ...],
) -> bool:
    if rl is None:
        return False
    return (
        any(i in rl.jti for i in ids)
        or any(s in rl.sub for s in subjects)
        or any(k in rl.keys for k in keys)
    )
