"""``threshold issuer certify``: the owner delegates ticket issuing to a company, within caps.

The token goes to stdout; what the certificate allows, one line per cap, to stderr, so the
owner sees what was delegated (emergency tickets only when named in ``--purposes``)."""

from __future__ import annotations

import argparse
import secrets
import sys
from datetime import timedelta
from typing import Any

from gateway.cli import inputs
from gateway.errors import UsageError
from gateway.trust.certificate import IssuerCertificate, allowances, sign_certificate
from gateway.trust.reasons import TicketError
from gateway.trust.schedule import parse_hours
from gateway.trust.ticket import Purpose

_PURPOSES = [p.value for p in Purpose]


def _list(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise UsageError("an empty list")
    return items


def _certify(args: argparse.Namespace) -> int:
    owner = inputs.read_secret_key(args.owner_key)
    issuer_pub = inputs.public_key(args.issuer_pub, "--issuer-pub")
    not_before = inputs.moment(args.not_before, "--not-before")
    not_after = (
        inputs.moment(args.not_after, "--not-after")
        if args.not_after
        else not_before + timedelta(days=365)
    )
    purposes = _list(args.purposes)
    if purposes is not None and any(p not in _PURPOSES for p in purposes):
        raise UsageError(f"--purposes: each must be one of {', '.join(_PURPOSES)}")
    if args.max_ticket_hours is not None and not 0 < args.max_ticket_hours <= 168:
        raise UsageError("--max-ticket-hours must be in (0, 168]")
    try:
        cert = IssuerCertificate(
            sub=args.name,
            key=issuer_pub,
            aud=args.gateway,
            jti=args.id or "cert-" + secrets.token_hex(8),
            iat=inputs.moment(None, "now"),
            nbf=not_before,
            exp=not_after,
            doors=_list(args.doors),
            purposes=None if purposes is None else tuple(Purpose(p) for p in purposes),
            hours=None if args.hours is None else parse_hours(args.hours),
            max_ticket_s=None
            if args.max_ticket_hours is None
            else int(args.max_ticket_hours * 3600),
            max_uses=args.max_uses,
        )
        token = sign_certificate(cert, owner)
    except TicketError as exc:
        raise UsageError(exc.message) from exc
    print(token)
    # What the owner has just delegated, on stderr so stdout stays the token alone.
    for line in allowances(cert):
        print(f"  {line}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("issuer", help="certify a ticket issuer (a delivery company)")
    commands = parser.add_subparsers(dest="issuer_command", metavar="COMMAND")
    commands.required = True
    certify = commands.add_parser("certify", help="print an owner-signed issuer certificate")
    certify.add_argument("--owner-key", required=True, metavar="FILE")
    certify.add_argument("--issuer-pub", required=True, metavar="B64")
    certify.add_argument("--gateway", required=True, metavar="GW")
    certify.add_argument("--name", default="issuer", help="the issuer's name (tickets' iss)")
    certify.add_argument("--doors", metavar="a,b")
    certify.add_argument(
        "--purposes",
        metavar="delivery,...",
        help="default: every purpose but emergency (name emergency to allow it)",
    )
    certify.add_argument("--not-before", metavar="T")
    certify.add_argument("--not-after", metavar="T")
    certify.add_argument("--hours", metavar="HH:MM-HH:MM")
    certify.add_argument("--max-ticket-hours", type=float, metavar="H")
    certify.add_argument("--max-uses", type=int, metavar="N")
    certify.add_argument("--id", metavar="JTI", help="certificate id (default: random)")
    certify.set_defaults(handler=_certify)
