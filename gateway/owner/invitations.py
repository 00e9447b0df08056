"""Keys for people: the household issuer at run time and the owner's invitations of
cleaners, dog walkers and guests, claimed by the visitor's own browser (docs/visitors.md).

:class:`Visitors` is the one owner of the household issuer (:mod:`gateway.owner.household`)
while the gateway runs, and of the invitations in the store (:mod:`store.invitations`):

* the owner re-certifies the issuer (root key; recorded as ``household.certified``);
* an owner device invites (a fresh passkey assertion over the terms' digest, checked by
  :meth:`gateway.owner.app.OwnerApp.authorise`; recorded as ``visitor.invited``) and gets a
  one-time link;
* the visitor's page claims the link with its public key only; in one store transaction the
  link is spent, the key bound and ``visitor.claimed`` recorded, and the tickets (one per
  door, at most 7 days, ``cnf`` = that key) are issued within the certificate's caps;
* the page renews its tickets by proving it holds the key (``visitor.renewed``);
* the owner revokes (``visitor.revoked``): at once on this gateway (the access service's
  local revocations), and the page is told on its next renewal or door request.

The link's secret is never stored (its SHA-256 is) and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.owner.errors import OwnerAppError
from gateway.owner.household import (
    Household,
    check_certificate,
    load_household,
    store_certificate,
)
from gateway.owner.visit_terms import (
    VisitorKind,
    VisitTerms,
    next_window,
    parse_terms,
    use_rule,
)
from gateway.trust.base64url import b64u_decode, b64u_encode
from gateway.trust.certificate import allowances
from gateway.trust.keys import TrustAnchors, key_id
from gateway.trust.proof import NONCE_LEN, proof_valid
from gateway.trust.schedule import WeeklyWindow
from gateway.trust.ticket import MAX_LIFETIME, Camera
from store.db import Store
from store.invitations import InvitationRecord, InvitationTables
from store.transaction import StoreTransaction

log = logging.getLogger("threshold.visitors")

LINK_TTL = timedelta(days=7)
NONCE_TTL_S = 30.0
MAX_NONCES = 1024
RENEW_ACTION = "renew"
STATUS_ACTION = "status"


class VisitorRefused(OwnerAppError):
    """Base of the refusals a visitor's page is given; ``status`` is the HTTP status."""

    code = "visitor_refused"
    status = 403


class InvitationUnknown(VisitorRefused):
    code = "invitation_unknown"
    status = 404


class InvitationUsed(VisitorRefused):
    """The link was claimed already (by this visitor's phone, or by someone else's)."""

    code = "invitation_used"
    status = 409


class InvitationRevoked(VisitorRefused):
    code = "invitation_revoked"
    status = 403


class InvitationEnded(VisitorRefused):
    """The link expired unclaimed, or the arrangement's last day has passed."""

    code = "invitation_ended"
    status = 410


class ProofRefused(VisitorRefused):
    """A renewal without a valid proof of the key (unknown nonce, bad signature)."""

    code = "proof_refused"
    status = 403


@dataclass(frozen=True, slots=True)
class Issued:
    door: str
    jti: str
    token: str
    exp: datetime


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _terms_of(record: InvitationRecord) -> dict[str, Any]:
    loaded = json.loads(record.terms)
    assert isinstance(loaded, dict)
    return loaded


def _windows(terms: dict[str, Any]) -> tuple[WeeklyWindow, ...]:
    return tuple(
        WeeklyWindow.from_claim(w["days"], w["start"], w["end"]) for w in terms["schedule"]
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Visitors:
    """See the module docstring."""

    def __init__(
        self,
        directory: Path,
        anchors: TrustAnchors,
        gateway_id: str,
        store: Store,
        *,
        zone: ZoneInfo | None = None,
        doors: frozenset[str] = frozenset(),
        origin: Callable[[], str] = lambda: "",
        revoke_here: Callable[[bytes, datetime], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self.anchors = anchors
        self.gateway_id = gateway_id
        self.store = store
        self.zone = zone or ZoneInfo("UTC")
        self.doors = doors
        self.origin = origin
        self._revoke_here = revoke_here
        self.clock = clock
        self.household: Household = load_household(directory, anchors, gateway_id)
        self._nonces: OrderedDict[bytes, float] = OrderedDict()

    # -- the household issuer ------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The household issuer as the owner reads it: its key and what it may do."""
        cert = self.household.cert
        return {
            "public_key": b64u_encode(self.household.public_key),
            "gateway_id": self.gateway_id,
            "certificate": self.household.certificate,
            "allowances": [] if cert is None else allowances(cert),
        }

    async def certify(self, token: str) -> dict[str, Any]:
        """Take the owner's (new) certificate for the household issuer, recorded."""
        cert = check_certificate(token, self.anchors, self.household.public_key, self.gateway_id)
        self.household = await asyncio.to_thread(
            store_certificate, self.directory, self.household, token, cert
        )

        def write(tx: StoreTransaction) -> None:
            tx.append(
                "household.certified",
                {
                    "certificate": cert.jti,
                    "doors": list(cert.doors or ()),
                    "purposes": [p.value for p in cert.purposes or ()],
                    "exp_ms": int(cert.exp.timestamp() * 1000),
                },
            )

        await self.store.transact(write)
        log.info("household issuer certified (%s) until %s", cert.jti, cert.exp.isoformat())
        return self.describe()

    # -- the owner's side ----------------------------------------------------------------------

    def terms(self, body: Any) -> VisitTerms:
        return parse_terms(body, self.doors)

    async def invite(self, terms: VisitTerms, by_device: str, by_name: str) -> dict[str, Any]:
        """Record the invitation and answer its one-time link (the caller checked the
        device's fresh assertion over ``terms.digest()``)."""
        # No link that could not be claimed: the certificate's caps are checked now.
        self.household.check_terms(terms.doors, terms.kind.purpose, terms.schedule)
        token = b64u_encode(secrets.token_bytes(32))
        invitation_id = "inv-" + secrets.token_hex(6)
        stored = {**terms.to_json(), "invited_by": by_name}
        now = self.clock()
        ends = now + timedelta(days=terms.days)
        link_expires = min(now + LINK_TTL, ends)

        def write(tx: StoreTransaction) -> None:
            tx.invitations.add(
                invitation_id,
                _hash(token),
                json.dumps(stored, sort_keys=True),
                by_device,
                tx.now_ms(),
                int(link_expires.timestamp() * 1000),
                int(ends.timestamp() * 1000),
            )
            tx.append(
                "visitor.invited",
                {"invitation": invitation_id, "by": f"device:{by_device}", **terms.to_json()},
            )

        await self.store.transact(write)
        log.info("invitation %s (%s) by device %s", invitation_id, terms.kind.value, by_device)
        link = f"{self.origin()}/visit/#invite={token}"
        return {
            "invitation": invitation_id,
            "link": link,
            "link_expires": _iso(link_expires),
            "ends": _iso(ends),
        }

    async def invitations(self) -> list[dict[str, Any]]:
        records = await self.store.read(lambda conn: InvitationTables(conn).all())
        return [self._view(r) for r in records]

    async def revoke(self, invitation_id: str, by: str) -> dict[str, Any]:
        """Stop the visitor's key at once on this gateway; recorded."""
        record = await self.store.read(lambda conn: InvitationTables(conn).get(invitation_id))
        if record is None:
            raise InvitationUnknown(f"no invitation {invitation_id}")

        def write(tx: StoreTransaction) -> bool:
            if not tx.invitations.revoke(invitation_id, tx.now_ms()):
                return False
            tx.append("visitor.revoked", {"invitation": invitation_id, "by": by})
            return True

        if await self.store.transact(write):
            self._apply_revocation(record)
            log.info("invitation %s revoked by %s", invitation_id, by)
        return self._view(await self._record(invitation_id))

    def _apply_revocation(self, record: InvitationRecord) -> None:
        if record.holder_key is not None and self._revoke_here is not None:
            until = datetime.fromtimestamp(record.ends_ms / 1000, UTC) + MAX_LIFETIME
            self._revoke_here(record.holder_key, until)

    async def restore_revocations(self) -> int:
        """At start: every revoked invitation's key stays stopped on this gateway."""
        records = await self.store.read(lambda conn: InvitationTables(conn).all())
        revoked = [r for r in records if r.revoked_ms is not None and r.holder_key is not None]
        for record in revoked:
            self._apply_revocation(record)
        return len(revoked)

    # -- the visitor's side --------------------------------------------------------------------

    async def preview(self, token: str) -> dict[str, Any]:
        """What the link offers, before the visitor accepts (nothing is spent)."""
        record = await self._usable(token)
        return self._view(record)

    async def claim(self, token: str, holder_key: bytes) -> dict[str, Any]:
        """Spend the link, bind ``holder_key`` and issue its tickets, atomically."""
        if len(holder_key) != 32:
            raise ProofRefused("the public key is 32 bytes (Ed25519)")
        record = await self._usable(token)
        now = self.clock()
        issued = self._issue(record, holder_key, now)
        token_hash = _hash(token)

        def write(tx: StoreTransaction) -> bool:
            if not tx.invitations.claim(token_hash, holder_key, tx.now_ms()):
                return False
            tx.append(
                "visitor.claimed",
                {
                    "invitation": record.invitation_id,
                    "key": key_id(holder_key),
                    "tickets": [t.jti for t in issued],
                },
            )
            return True

        if not await self.store.transact(write):
            raise InvitationUsed("this invitation was already accepted on another phone")
        log.info("invitation %s claimed", record.invitation_id)
        claimed = await self._record(record.invitation_id)
        return {**self._view(claimed), "tickets": [self._ticket_json(t) for t in issued]}

    def challenge(self) -> str:
        """A single-use nonce the page signs to renew (valid :data:`NONCE_TTL_S`)."""
        now = time.monotonic()
        for key in [k for k, t in self._nonces.items() if t <= now]:
            del self._nonces[key]
        while len(self._nonces) >= MAX_NONCES:
            self._nonces.popitem(last=False)
        nonce = secrets.token_bytes(NONCE_LEN)
        self._nonces[nonce] = now + NONCE_TTL_S
        return b64u_encode(nonce)

    async def renew(
        self, invitation_id: str, nonce_text: str, proof_text: str, *, issue: bool = True
    ) -> dict[str, Any]:
        """Fresh tickets for the page that proves it holds the invitation's key (``issue``
        False: only the invitation as it stands, revoked or not, and its next window)."""
        try:
            nonce, proof = b64u_decode(nonce_text), b64u_decode(proof_text)
        except ValueError:
            raise ProofRefused("nonce and proof are base64url") from None
        expires = self._nonces.pop(nonce, None)
        if expires is None or expires <= time.monotonic():
            raise ProofRefused("unknown or expired challenge: ask for a new one")
        record = await self.store.read(lambda conn: InvitationTables(conn).get(invitation_id))
        if record is None or record.holder_key is None:
            raise InvitationUnknown("no claimed invitation with that id")
        action = RENEW_ACTION if issue else STATUS_ACTION
        try:
            valid = proof_valid(
                record.holder_key, proof, self.gateway_id, nonce, invitation_id, action
            )
        except ValueError:
            valid = False
        if not valid:
            raise ProofRefused("the proof does not verify with this invitation's key")
        if not issue:
            return self._view(record)
        self._check_live(record, self.clock())
        issued = self._issue(record, record.holder_key, self.clock())

        def write(tx: StoreTransaction) -> None:
            tx.append(
                "visitor.renewed",
                {"invitation": invitation_id, "tickets": [t.jti for t in issued]},
            )

        await self.store.transact(write)
        return {**self._view(record), "tickets": [self._ticket_json(t) for t in issued]}

    # -- parts ---------------------------------------------------------------------------------

    async def _record(self, invitation_id: str) -> InvitationRecord:
        record = await self.store.read(lambda conn: InvitationTables(conn).get(invitation_id))
        if record is None:
            raise InvitationUnknown(f"no invitation {invitation_id}")
        return record

    async def _usable(self, token: str) -> InvitationRecord:
        record = await self.store.read(lambda conn: InvitationTables(conn).by_token(_hash(token)))
        if record is None:
            raise InvitationUnknown("this invitation link is not known here")
        if record.holder_key is not None:
            raise InvitationUsed("this invitation was already accepted on another phone")
        now = self.clock()
        self._check_live(record, now)
        if record.link_expires_ms <= now.timestamp() * 1000:
            raise InvitationEnded("this invitation link has expired")
        return record

    def _check_live(self, record: InvitationRecord, now: datetime) -> None:
        if record.revoked_ms is not None:
            raise InvitationRevoked("the owner has withdrawn this invitation")
        if record.ends_ms <= now.timestamp() * 1000:
            raise InvitationEnded("this arrangement has ended")

    def _issue(self, record: InvitationRecord, holder_key: bytes, now: datetime) -> list[Issued]:
        terms = _terms_of(record)
        kind = VisitorKind(terms["kind"])
        ends = datetime.fromtimestamp(record.ends_ms / 1000, UTC)
        rule = use_rule(record.invitation_id, terms, _windows(terms), now, self.zone)
        if rule is None:
            raise InvitationEnded("none of your times opens in the coming week")
        out = []
        for door in terms["doors"]:
            ticket, token = self.household.issue(
                holder_key=holder_key,
                holder=f"{terms['name']} ({kind.words})"[:64],
                door=door,
                purpose=kind.purpose,
                nbf=rule.nbf or now - timedelta(minutes=1),
                exp=min(ends, rule.exp or now + MAX_LIFETIME - timedelta(minutes=1)),
                uses=rule.uses,
                schedule=_windows(terms),
                camera=Camera.REQUIRED if terms["camera_required"] else Camera.PREFERRED,
                now=now,
                jti=rule.jti,
            )
            out.append(Issued(door, ticket.jti, token, ticket.exp))
        return out

    @staticmethod
    def _ticket_json(issued: Issued) -> dict[str, str]:
        return {
            "door": issued.door,
            "jti": issued.jti,
            "ticket": issued.token,
            "exp": _iso(issued.exp),
        }

    def _view(self, record: InvitationRecord) -> dict[str, Any]:
        terms = _terms_of(record)
        window = next_window(_windows(terms), self.clock(), self.zone)
        return {
            "invitation": record.invitation_id,
            "gateway_id": self.gateway_id,
            "zone": self.zone.key,
            **terms,
            "ends": _iso(datetime.fromtimestamp(record.ends_ms / 1000, UTC)),
            "claimed": record.holder_key is not None,
            "revoked": record.revoked_ms is not None,
            "next_window": None
            if window is None
            else {"start": _iso(window[0]), "end": _iso(window[1])},
        }
