"""The ticket: the claims a phone presents at the door (schema version 1, docs/tickets.md §3).

This module turns a :class:`Ticket` into signed claims and back. It checks the shape of each
claim (types, ranges, allowed characters, the 7-day lifetime cap) but not whether the ticket
opens anything: that is :func:`gateway.trust.verification.verify_ticket`. docs/tickets.md, "Claims",
is the normative table.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.trust.claims import IDENTIFIER, NAME, ClaimReader, format_time, malformed
from gateway.trust.envelope import TokenKind, seal
from gateway.trust.keys import decode_public_key
from gateway.trust.paseto import b64encode
from gateway.trust.schedule import WeeklyWindow

SCHEMA_VERSION = 1
MAX_LIFETIME = timedelta(days=7)
MAX_USES = 1000
MAX_OPEN_S = 3600
DEFAULT_OPEN_S = 60
MAX_WINDOWS = 14
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Purpose(StrEnum):
    """Why the holder comes (the ``purpose`` claim); the one enum of purposes in Threshold.

    Its rule at the door is :mod:`gateway.access.policy`'s."""

    DELIVERY = "delivery"
    SERVICE = "service"
    GUEST = "guest"
    SURVEY = "survey"
    EMERGENCY = "emergency"


class Camera(StrEnum):
    """Whether the door may open without live camera frames (``required`` fails closed)."""

    REQUIRED = "required"
    PREFERRED = "preferred"


def package_hash(barcode: str) -> str:
    """The SHA-256 (hex) of a package barcode, as a delivery ticket carries it."""
    return hashlib.sha256(barcode.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Delivery:
    order: str
    packages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ticket:
    """Signed permission for one holder key to open one door of one gateway."""

    iss: str
    sub: str
    aud: str
    jti: str
    iat: datetime
    nbf: datetime
    exp: datetime
    door: str
    purpose: Purpose
    cnf: bytes = field(repr=False)
    uses: int = 1
    schedule: tuple[WeeklyWindow, ...] = ()
    delivery: Delivery | None = None
    approval: str | None = None
    open_s: int = DEFAULT_OPEN_S
    camera: Camera = Camera.REQUIRED

    @property
    def needs_owner_approval(self) -> bool:
        return self.approval == "owner"

    def to_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "iss": self.iss,
            "sub": self.sub,
            "aud": self.aud,
            "jti": self.jti,
            "iat": format_time(self.iat),
            "nbf": format_time(self.nbf),
            "exp": format_time(self.exp),
            "door": self.door,
            "purpose": self.purpose.value,
            "cnf": b64encode(self.cnf),
            "uses": self.uses,
            "open_s": self.open_s,
            "camera": self.camera.value,
        }
        if self.schedule:
            claims["schedule"] = [w.to_claim() for w in self.schedule]
        if self.delivery is not None:
            claims["delivery"] = {
                "order": self.delivery.order,
                "packages": list(self.delivery.packages),
            }
        if self.approval is not None:
            claims["approval"] = self.approval
        return claims


def read_window(reader: ClaimReader) -> WeeklyWindow:
    days = reader.text_list("days", max_items=7)
    assert days is not None
    return WeeklyWindow.from_claim(
        days, reader.req_text("start", max_len=5), reader.req_text("end", max_len=5)
    )


def _read_delivery(reader: ClaimReader) -> Delivery:
    order = reader.req_text("order", pattern=IDENTIFIER)
    packages = reader.text_list("packages", pattern=_SHA256_HEX, max_items=32, required=False)
    return Delivery(order, packages or ())


def ticket_from_claims(claims: dict[str, Any]) -> Ticket:
    """Read and check a ticket's claims; malformed_claims on any deviation from schema 1."""
    reader = ClaimReader(claims, "ticket")
    if reader.raw("v", required=True) != SCHEMA_VERSION:
        malformed("unknown ticket schema version")
    schedule_raw = reader.raw("schedule")
    windows: list[WeeklyWindow] = []
    if schedule_raw is not None:
        if not isinstance(schedule_raw, list) or not 0 < len(schedule_raw) <= MAX_WINDOWS:
            malformed(f"ticket.schedule must be a list of 1..{MAX_WINDOWS} windows")
        for item in schedule_raw:
            if not isinstance(item, dict):
                malformed("ticket.schedule items must be objects")
            window_reader = ClaimReader(item, "ticket.schedule[]")
            windows.append(read_window(window_reader))
            window_reader.finish()
    ticket = Ticket(
        iss=reader.req_text("iss", pattern=NAME),
        sub=reader.req_text("sub", pattern=NAME),
        aud=reader.req_text("aud", pattern=IDENTIFIER),
        jti=reader.req_text("jti", pattern=IDENTIFIER),
        iat=reader.time("iat"),
        nbf=reader.time("nbf"),
        exp=reader.time("exp"),
        door=reader.req_text("door", pattern=IDENTIFIER),
        purpose=Purpose(reader.choice("purpose", tuple(p.value for p in Purpose))),
        cnf=decode_public_key(reader.req_text("cnf", max_len=43)),
        uses=reader.integer("uses", low=1, high=MAX_USES, default=1),
        schedule=tuple(windows),
        delivery=reader.nested("delivery", _read_delivery),
        approval=reader.choice("approval", ("owner",), default="") or None,
        open_s=reader.integer("open_s", low=1, high=MAX_OPEN_S, default=DEFAULT_OPEN_S),
        camera=Camera(reader.choice("camera", tuple(c.value for c in Camera), "required")),
    )
    reader.finish()
    if ticket.exp <= ticket.nbf:
        malformed("ticket.exp must be after ticket.nbf")
    if ticket.exp - ticket.nbf > MAX_LIFETIME:
        malformed("a ticket may live at most 7 days; re-issue recurring tickets")
    if ticket.delivery is not None and ticket.purpose is not Purpose.DELIVERY:
        malformed("only delivery tickets carry delivery details")
    return ticket


def sign_ticket(ticket: Ticket, secret_key: bytes, certificate: str | None = None) -> str:
    """Sign a ticket with the owner key, or with an issuer key plus its certificate token.

    The claims are checked first, so nothing unverifiable is ever issued.
    """
    claims = ticket.to_claims()
    ticket_from_claims(claims)
    return seal(TokenKind.TICKET, claims, secret_key, certificate)
