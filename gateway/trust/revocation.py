"""Owner-signed revocation lists (format 2) and what a gateway holds from them
(docs/tickets.md §7).

A :class:`RevocationList` names the gateways it is for (``aud``) and revokes, each until a
time: ticket and certificate ids (``jti``), holder names (``sub``) and keys (``keys``: an issuer
key revokes a whole company, a holder key a lost phone). A gateway refuses a list made for
another gateway (``wrong_gateway``) and ADDS every list it accepts to what it holds
(:class:`HeldRevocations`): an entry stays until its own ``until``, whatever list comes later,
so no list (replayed, older, newer but shorter, or taken from another gateway) can make a
revoked ticket, holder or key usable again. ``seq`` only orders the owner's lists.

Format 1 (implicit assertion ``threshold-revocations-v1``) had no audience and no expiries,
and a newer list replaced the held one: it is refused on the wire. A list a gateway held
before the upgrade is read once more by :func:`verify_legacy_revocations` so that its entries
are carried over, each kept for :data:`LONGEST_VALIDITY` after the list was signed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.trust.certificate import MAX_CERTIFICATE_DAYS
from gateway.trust.claims import IDENTIFIER, NAME, ClaimReader, format_time, malformed
from gateway.trust.envelope import TokenKind, open_owner_signed, seal
from gateway.trust.keys import TrustAnchors, decode_public_key
from gateway.trust.paseto import b64encode
from gateway.trust.reasons import Reason, TicketError
from gateway.trust.ticket import MAX_LIFETIME

FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1
MAX_ENTRIES = 1000
MAX_AUDIENCE = 64
MAX_SEQ = 2**53 - 1
# Nothing signed today stays valid longer: the longest certificate, then the longest ticket
# issued under it on its last day. The owner's tooling keeps an entry this long by default.
LONGEST_VALIDITY = timedelta(days=MAX_CERTIFICATE_DAYS) + MAX_LIFETIME


class RevokedKind(StrEnum):
    """What an entry revokes; the value is the claim that lists it."""

    TICKET = "jti"  # a ticket id or a certificate id
    HOLDER = "sub"
    KEY = "keys"  # base64url public key: an issuer's or a holder's


@dataclass(frozen=True, slots=True)
class Revocation:
    kind: RevokedKind
    value: str
    until: datetime


def key_text(key: bytes) -> str:
    """How a revoked key is named in a list and in the store (unpadded base64url)."""
    return b64encode(key)


@dataclass(frozen=True, slots=True)
class RevocationList:
    aud: frozenset[str]
    seq: int
    iat: datetime
    entries: frozenset[Revocation] = frozenset()

    def to_claims(self) -> dict[str, Any]:
        maps: dict[RevokedKind, dict[str, str]] = {kind: {} for kind in RevokedKind}
        for entry in sorted(self.entries, key=lambda e: e.until):
            # Named twice: the later ``until`` wins, as it would when held.
            maps[entry.kind][entry.value] = format_time(entry.until)
        return {
            "v": FORMAT_VERSION,
            "aud": sorted(self.aud),
            "seq": self.seq,
            "iat": format_time(self.iat),
            **{kind.value: maps[kind] for kind in RevokedKind},
        }


def revocations_from_claims(claims: dict[str, Any]) -> RevocationList:
    reader = ClaimReader(claims, "revocations")
    if reader.raw("v", required=True) != FORMAT_VERSION:
        malformed(f"revocation list format must be {FORMAT_VERSION}")
    aud = reader.text_list("aud", pattern=IDENTIFIER, max_items=MAX_AUDIENCE) or ()
    if not aud:
        malformed("revocations.aud must name at least one gateway")
    seq = reader.integer("seq", low=0, high=MAX_SEQ)
    iat = reader.time("iat")
    entries = [
        Revocation(RevokedKind.TICKET, v, t)
        for v, t in reader.time_map("jti", pattern=IDENTIFIER, max_items=MAX_ENTRIES).items()
    ]
    entries += [
        Revocation(RevokedKind.HOLDER, v, t)
        for v, t in reader.time_map("sub", pattern=NAME, max_items=MAX_ENTRIES).items()
    ]
    entries += [
        Revocation(RevokedKind.KEY, key_text(decode_public_key(v)), t)
        for v, t in reader.time_map("keys", max_items=MAX_ENTRIES).items()
    ]
    reader.finish()
    if len(entries) > MAX_ENTRIES:
        malformed(f"a revocation list holds at most {MAX_ENTRIES} entries")
    if len(set(aud)) != len(aud):
        malformed("revocations.aud names a gateway twice")
    return RevocationList(frozenset(aud), seq, iat, frozenset(entries))


def sign_revocations(rl: RevocationList, owner_secret_key: bytes) -> str:
    claims = rl.to_claims()
    revocations_from_claims(claims)
    return seal(TokenKind.REVOCATION_LIST, claims, owner_secret_key)


def verify_revocations(token: str, anchors: TrustAnchors, *, gateway_id: str) -> RevocationList:
    """Check an owner-signed list made for ``gateway_id``. Raises TicketError with the reason
    (``wrong_gateway`` for a list made for other gateways only)."""
    try:
        claims = open_owner_signed(token, TokenKind.REVOCATION_LIST, anchors)
    except TicketError as exc:
        if exc.reason is Reason.BAD_SIGNATURE and _is_legacy(token, anchors):
            raise TicketError(
                Reason.MALFORMED_CLAIMS,
                "a format 1 revocation list names no gateway: sign a new one",
            ) from exc
        raise
    rl = revocations_from_claims(claims)
    if gateway_id not in rl.aud:
        raise TicketError(Reason.WRONG_GATEWAY, "revocation list is for another gateway")
    return rl


def _is_legacy(token: str, anchors: TrustAnchors) -> bool:
    try:
        open_owner_signed(token, TokenKind.LEGACY_REVOCATION_LIST, anchors)
    except TicketError:
        return False
    return True


def verify_legacy_revocations(token: str, anchors: TrustAnchors) -> RevocationList:
    """Read a format 1 list held from before the upgrade (no audience: ``aud`` is empty);
    every entry is kept for :data:`LONGEST_VALIDITY` after the list was signed."""
    reader = ClaimReader(
        open_owner_signed(token, TokenKind.LEGACY_REVOCATION_LIST, anchors), "revocations"
    )
    if reader.raw("v", required=True) != LEGACY_FORMAT_VERSION:
        malformed("not a format 1 revocation list")
    seq = reader.integer("seq", low=0, high=MAX_SEQ)
    iat = reader.time("iat")
    until = iat + LONGEST_VALIDITY
    lists = {
        RevokedKind.TICKET: reader.text_list("jti", pattern=IDENTIFIER, max_items=MAX_ENTRIES),
        RevokedKind.HOLDER: reader.text_list("sub", pattern=NAME, max_items=MAX_ENTRIES),
        RevokedKind.KEY: tuple(
            key_text(decode_public_key(k))
            for k in reader.text_list("keys", max_items=MAX_ENTRIES) or ()
        ),
    }
    reader.finish()
    entries = frozenset(
        Revocation(kind, value, until) for kind, values in lists.items() for value in values or ()
    )
    return RevocationList(frozenset(), seq, iat, entries)


@dataclass(frozen=True, slots=True)
class HeldRevocations:
    """What a gateway holds: every entry of every list it accepted, each until its latest
    ``until``; ``seq`` is the highest list number seen (None before the first list)."""

    seq: int | None = None
    until: Mapping[tuple[RevokedKind, str], datetime] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[Revocation], seq: int | None) -> HeldRevocations:
        until: dict[tuple[RevokedKind, str], datetime] = {}
        for entry in entries:
            held = until.get((entry.kind, entry.value))
            if held is None or entry.until > held:
                until[(entry.kind, entry.value)] = entry.until
        return cls(seq, until)

    @classmethod
    def of_list(cls, rl: RevocationList) -> HeldRevocations:
        return cls.of(rl.entries, rl.seq)

    def __len__(self) -> int:
        return len(self.until)

    def entries(self) -> list[Revocation]:
        return [Revocation(kind, value, until) for (kind, value), until in self.until.items()]

    def adding(self, rl: RevocationList) -> HeldRevocations:
        """What is held once ``rl`` is added: the union, each entry until its latest
        ``until``, and the higher ``seq`` (the rule the store keeps on disk)."""
        seq = rl.seq if self.seq is None else max(self.seq, rl.seq)
        return HeldRevocations.of([*self.entries(), *rl.entries], seq)

    def covers(self, rl: RevocationList) -> bool:
        """Whether every entry of ``rl`` is held already, at least as long: adding it would
        change nothing (the gateway then skips the store write)."""
        for entry in rl.entries:
            held = self.until.get((entry.kind, entry.value))
            if held is None or held < entry.until:
                return False
        return rl.seq <= (self.seq if self.seq is not None else -1)


def revoked(
    held: HeldRevocations | None,
    *,
    ids: tuple[str, ...],
    subjects: tuple[str, ...],
    keys: tuple[bytes, ...],
    at: datetime,
    skew: timedelta,
) -> bool:
    """Whether any of these is revoked at ``at``. An entry holds while ``at`` is before its
    ``until`` plus the skew, as long as a ticket expiring then is still accepted."""
    if held is None or not held.until:
        return False
    wanted = [(RevokedKind.TICKET, i) for i in ids]
    wanted += [(RevokedKind.HOLDER, s) for s in subjects]
    wanted += [(RevokedKind.KEY, key_text(k)) for k in keys]
    for name in wanted:
        until = held.until.get(name)
        if until is not None and at < until + skew:
            return True
    return False
