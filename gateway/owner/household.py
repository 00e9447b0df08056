"""The household issuer: the gateway's own key for visitors' tickets, capped by the owner
(docs/visitors.md, "The household issuer").

The owner's root key signs once: an issuer certificate (:mod:`gateway.trust.certificate`)
naming this key, for purposes ``service`` and ``guest`` only, the doors the owner names, at
most 7 days a ticket and, if the owner wants, hours of the day. After that the owner's app
devices ask the gateway to issue within those caps. The certificate rides in every ticket's
footer, so the door checks the caps too (``certificate_exceeded``): a bug here cannot widen
them. The key is ``household-issuer.key`` (mode 0600, checked at start by
:mod:`gateway.app.file_modes`), the certificate ``household-issuer.cert`` (public).

Pure but for :func:`ensure_key` and :func:`load_household`, which read and write the files.
"""

from __future__ import annotations

import contextlib
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from nacl.signing import SigningKey

from gateway.owner.errors import OwnerAppError
from gateway.trust.base64url import b64u_decode, b64u_encode
from gateway.trust.certificate import IssuerCertificate, verify_certificate
from gateway.trust.keys import TrustAnchors
from gateway.trust.reasons import TicketError
from gateway.trust.schedule import WeeklyWindow, format_hours, within
from gateway.trust.ticket import MAX_LIFETIME, Camera, Purpose, Ticket, sign_ticket
from groundwork.files import PUBLIC, write_file

KEY_NAME = "household-issuer.key"
CERT_NAME = "household-issuer.cert"
ISSUER_NAME = "household"
PURPOSES = frozenset({Purpose.SERVICE, Purpose.GUEST})
MAX_TICKET_S = int(MAX_LIFETIME.total_seconds())


class HouseholdRefused(OwnerAppError):
    """A certificate that does not fit the household issuer, or an issue beyond its caps."""

    code = "household_refused"


class HouseholdUncertified(OwnerAppError):
    """The owner has not certified the household issuer yet (``threshold owner
    household-issuer --certify``)."""

    code = "household_uncertified"


def key_path(directory: Path) -> Path:
    return directory / KEY_NAME


def certificate_path(directory: Path) -> Path:
    return directory / CERT_NAME


def ensure_key(directory: Path) -> SigningKey:
    """The household issuer's key, made (mode 0600, never overwriting) the first time."""
    path = key_path(directory)
    if not path.exists():
        key = SigningKey.generate()
        text = b64u_encode(bytes(key) + bytes(key.verify_key)) + "\n"
        # Made meanwhile by another start: read that one.
        with contextlib.suppress(FileExistsError):
            write_file(path, text.encode("ascii"))
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        raw = b64u_decode(path.read_text("ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HouseholdRefused(f"{path}: cannot read the household issuer's key ({exc})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise HouseholdRefused(f"{path}: readable by others (mode {mode:o}); run chmod 600 on it")
    if len(raw) != 64 or bytes(SigningKey(raw[:32]).verify_key) != raw[32:]:
        raise HouseholdRefused(f"{path}: not an Ed25519 secret key")
    return SigningKey(raw[:32])


def household_certificate(
    issuer_public_key: bytes,
    gateway_id: str,
    doors: tuple[str, ...],
    now: datetime,
    *,
    days: int = 365,
    hours: WeeklyWindow | None = None,
) -> IssuerCertificate:
    """The certificate the owner signs: the household issuer's caps, nothing wider."""
    if not doors:
        raise HouseholdRefused("name at least one door the household issuer may open")
    return IssuerCertificate(
        sub=ISSUER_NAME,
        key=issuer_public_key,
        aud=gateway_id,
        jti="household-" + secrets.token_hex(6),
        iat=now,
        nbf=now - timedelta(minutes=5),
        exp=now + timedelta(days=days),
        doors=tuple(doors),
        purposes=(Purpose.SERVICE, Purpose.GUEST),
        hours=hours,
        max_ticket_s=MAX_TICKET_S,
    )


def check_certificate(
    token: str, anchors: TrustAnchors, issuer_public_key: bytes, gateway_id: str
) -> IssuerCertificate:
    """The owner-signed certificate ``token`` if it caps exactly this household issuer."""
    try:
        cert = verify_certificate(token, anchors)
    except TicketError as exc:
        raise HouseholdRefused(f"the certificate does not verify ({exc.code})") from None
    if cert.key != issuer_public_key:
        raise HouseholdRefused("the certificate names another key than the household issuer's")
    if cert.aud != gateway_id:
        raise HouseholdRefused(f"the certificate is for gateway {cert.aud}, not {gateway_id}")
    if cert.purposes is None or not set(cert.purposes) <= PURPOSES:
        raise HouseholdRefused("the household issuer may issue service and guest tickets only")
    if cert.doors is None:
        raise HouseholdRefused("the certificate must name the doors")
    if cert.max_ticket_s is None or cert.max_ticket_s > MAX_TICKET_S:
        raise HouseholdRefused("the certificate must cap tickets at 7 days at most")
    return cert


@dataclass(frozen=True, slots=True)
class Household:
    """The household issuer as the gateway holds it: its key and, once the owner signed
    it, its certificate."""

    key: SigningKey
    certificate: str | None = None
    cert: IssuerCertificate | None = None

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    def certified(self) -> IssuerCertificate:
        if self.cert is None:
            raise HouseholdUncertified(
                "the owner has not certified the household issuer: run "
                "threshold owner household-issuer --certify --door NAME"
            )
        return self.cert

    def check_terms(
        self, doors: tuple[str, ...], purpose: Purpose, schedule: tuple[WeeklyWindow, ...]
    ) -> None:
        """Refuse, when inviting, what the certificate would refuse when claiming."""
        cert = self.certified()
        outside = [d for d in doors if cert.doors is not None and d not in cert.doors]
        if outside:
            raise HouseholdRefused(
                f"the owner's certificate does not cover door {outside[0]}: re-certify the "
                "household issuer with that door"
            )
        if cert.purposes is None or purpose not in cert.purposes:
            raise HouseholdRefused(f"the owner's certificate does not cover {purpose.value}")
        if cert.hours is not None and not within(schedule, [cert.hours]):
            raise HouseholdRefused(
                f"the schedule goes beyond the certificate's hours ({format_hours(cert.hours)})"
            )

    def issue(
        self,
        *,
        holder_key: bytes,
        holder: str,
        door: str,
        purpose: Purpose,
        nbf: datetime,
        exp: datetime,
        uses: int,
        schedule: tuple[WeeklyWindow, ...],
        camera: Camera,
        now: datetime,
        jti: str | None = None,
    ) -> tuple[Ticket, str]:
        """A ticket for ``holder_key`` within the certificate's caps (exp cut to them)."""
        cert = self.certified()
        if cert.doors is not None and door not in cert.doors:
            raise HouseholdRefused(f"the owner's certificate does not cover door {door}")
        if cert.purposes is None or purpose not in cert.purposes:
            raise HouseholdRefused(f"the owner's certificate does not cover {purpose.value}")
        if cert.hours is not None and schedule and not within(schedule, [cert.hours]):
            raise HouseholdRefused("the schedule goes beyond the certificate's hours")
        longest = timedelta(seconds=cert.max_ticket_s or MAX_TICKET_S)
        nbf = max(nbf, cert.nbf)
        exp = min(exp, nbf + longest, cert.exp)
        if exp <= nbf or exp <= now:
            raise HouseholdRefused("nothing left to issue: the arrangement or certificate ended")
        ticket = Ticket(
            iss=ISSUER_NAME,
            sub=holder,
            aud=cert.aud,
            jti=jti or "v-" + secrets.token_hex(8),
            iat=now,
            nbf=nbf,
            exp=exp,
            door=door,
            purpose=purpose,
            cnf=holder_key,
            uses=uses,
            schedule=schedule,
            camera=camera,
        )
        secret = bytes(self.key) + self.public_key
        return ticket, sign_ticket(ticket, secret, self.certificate)


def load_household(directory: Path, anchors: TrustAnchors, gateway_id: str) -> Household:
    """The household issuer from ``directory`` (its key made the first time); a certificate
    that no longer fits (another owner key, another gateway) is left out, not trusted."""
    key = ensure_key(directory)
    path = certificate_path(directory)
    try:
        token = path.read_text("ascii").strip()
    except FileNotFoundError:
        return Household(key)
    except (OSError, UnicodeDecodeError) as exc:
        raise HouseholdRefused(f"{path}: cannot read ({exc})") from None
    cert = check_certificate(token, anchors, bytes(key.verify_key), gateway_id)
    return Household(key, token, cert)


def store_certificate(
    directory: Path, household: Household, token: str, cert: IssuerCertificate
) -> Household:
    """Keep the owner's new certificate (public: it rides in every ticket anyway)."""
    data = (token + "\n").encode("ascii")
    write_file(certificate_path(directory), data, replace=True, mode=PUBLIC)
    return Household(household.key, token, cert)
