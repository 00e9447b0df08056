"""``threshold ticket issue|inspect|verify``.

``ticket verify`` prints the verdict as JSON and exits 0 on allow, 1 on deny. With
``--holder-key`` it plays the phone too (makes a challenge and signs the proof), so the whole
chain is checked; without it the proof is left out and the verdict says so. A token that is not
even a well-formed v4.public token is a deny like any other (reason ``bad_token``, exit 1): the
gateway refuses it the same way. Exit 2 is kept for usage errors (a wrong flag, a bad key file).
"""

from __future__ import annotations

import argparse
import json
import secrets
from typing import Any

from gateway.cli import inputs
from gateway.errors import UsageError
from gateway.trust import paseto
from gateway.trust.claims import decode_object
from gateway.trust.keys import TrustAnchors
from gateway.trust.proof import new_challenge, sign_proof
from gateway.trust.reasons import TicketError
from gateway.trust.revocation import HeldRevocations, verify_revocations
from gateway.trust.schedule import WeeklyWindow
from gateway.trust.ticket import Camera, Delivery, Purpose, Ticket, package_hash, sign_ticket
from gateway.trust.verification import check_ticket, verify_ticket

EXIT_ALLOW, EXIT_DENY = 0, 1


def _issue(args: argparse.Namespace) -> int:
    key = inputs.read_secret_key(args.key)
    iss = "owner"
    cert = None
    if args.cert is not None:
        cert = inputs.token(args.cert)
        try:
            cert_claims = decode_object(paseto.peek(cert)[0])
        except (paseto.PasetoError, TicketError) as exc:
            raise UsageError("--cert is not a certificate token") from exc
        iss = str(cert_claims.get("sub", ""))
    jti = args.id or "t-" + secrets.token_hex(8)
    delivery = None
    if args.package_code or args.order:
        delivery = Delivery(
            args.order or jti, tuple(package_hash(code) for code in args.package_code)
        )
    try:
        ticket = Ticket(
            iss=iss,
            sub=args.subject,
            aud=args.gateway,
            jti=jti,
            iat=inputs.moment(None, "now"),
            nbf=inputs.moment(args.not_before, "--not-before"),
            exp=inputs.moment(args.not_after, "--not-after"),
            door=args.door,
            purpose=Purpose(args.purpose),
            cnf=inputs.public_key(args.holder_pub, "--holder-pub"),
            uses=args.uses,
            schedule=tuple(WeeklyWindow.parse(s) for s in args.schedule),
            delivery=delivery,
            approval=args.approval,
            open_s=args.open_seconds,
            camera=Camera(args.camera),
        )
        print(sign_ticket(ticket, key, cert))
    except TicketError as exc:
        raise UsageError(exc.message) from exc
    return 0


def _inspect(args: argparse.Namespace) -> int:
    token = inputs.token(args.token)
    try:
        message, footer_raw = paseto.peek(token)
        claims = decode_object(message)
        footer = decode_object(footer_raw) if footer_raw else {}
        if isinstance(footer.get("cert"), str):
            footer["cert"] = decode_object(paseto.peek(footer["cert"])[0])
    except (paseto.PasetoError, TicketError) as exc:
        raise UsageError(f"not a readable ticket: {exc}") from exc
    print(json.dumps({"verified": False, "claims": claims, "footer": footer}, indent=2))
    return 0


def _verify(args: argparse.Namespace) -> int:
    token = inputs.token(args.token)
    anchors = TrustAnchors.of(inputs.public_key(args.owner_pub, "--owner-pub"))
    now = inputs.moment(args.at, "--at")
    zone = inputs.zone(args.tz)
    revocations: HeldRevocations | None = None
    if args.revocations is not None:
        try:
            revocations = HeldRevocations.of_list(
                verify_revocations(inputs.token(args.revocations), anchors, gateway_id=args.gateway)
            )
        except TicketError as exc:
            raise UsageError(f"--revocations refused: {exc.reason.value}") from exc
    common: dict[str, Any] = {
        "anchors": anchors,
        "gateway_id": args.gateway,
        "door": args.door,
        "now": now,
        "zone": zone,
        "revocations": revocations,
        "uses_so_far": args.uses_so_far,
    }
    if args.holder_key is not None:
        holder = inputs.read_secret_key(args.holder_key)
        challenge = new_challenge(args.gateway, now)
        jti = ""
        try:
            claims = decode_object(paseto.peek(token)[0])
            jti = str(claims.get("jti", ""))
            proof: bytes | None = sign_proof(holder, args.gateway, challenge.nonce, jti, "open")
        except (paseto.PasetoError, TicketError, ValueError):
            proof = None
        verdict = verify_ticket(token, challenge=challenge, proof=proof, **common)
    else:
        verdict = check_ticket(token, **common)
    out = verdict.to_json()
    if not verdict.proof_checked:
        out["note"] = "proof of possession not checked (no --holder-key)"
    print(json.dumps(out))
    return EXIT_ALLOW if verdict.allowed else EXIT_DENY


def register(sub: Any) -> None:
    parser = sub.add_parser("ticket", help="issue, inspect and verify access tickets")
    commands = parser.add_subparsers(dest="ticket_command", metavar="COMMAND")
    commands.required = True

    issue = commands.add_parser("issue", help="print a signed ticket")
    issue.add_argument("--key", required=True, metavar="FILE", help="owner or issuer key file")
    issue.add_argument("--cert", metavar="TOKEN", help="issuer certificate (or @FILE)")
    issue.add_argument("--gateway", required=True, metavar="GW")
    issue.add_argument("--door", required=True, metavar="D")
    issue.add_argument("--purpose", required=True, choices=[p.value for p in Purpose])
    issue.add_argument("--holder-pub", required=True, metavar="B64")
    issue.add_argument("--not-before", required=True, metavar="T")
    issue.add_argument("--not-after", required=True, metavar="T")
    issue.add_argument("--uses", type=int, default=1, metavar="N")
    issue.add_argument("--schedule", action="append", default=[], metavar='"mon,tue 09:00-11:00"')
    issue.add_argument("--package-code", action="append", default=[], metavar="CODE")
    issue.add_argument("--order", metavar="ID", help="delivery order id (default: ticket id)")
    issue.add_argument("--approval", choices=["owner"])
    issue.add_argument("--open-seconds", type=int, default=60, metavar="S")
    issue.add_argument("--camera", choices=[c.value for c in Camera], default="required")
    issue.add_argument("--subject", default="holder", metavar="NAME")
    issue.add_argument("--id", metavar="JTI", help="ticket id (default: random)")
    issue.set_defaults(handler=_issue)

    inspect = commands.add_parser("inspect", help="print a ticket's claims, UNVERIFIED")
    inspect.add_argument("token", metavar="TOKEN")
    inspect.set_defaults(handler=_inspect)

    verify = commands.add_parser("verify", help="verify a ticket; exit 0 allow, 1 deny")
    verify.add_argument("token", metavar="TOKEN")
    verify.add_argument("--owner-pub", required=True, metavar="B64")
    verify.add_argument("--gateway", required=True, metavar="GW")
    verify.add_argument("--door", required=True, metavar="D")
    verify.add_argument("--at", metavar="T", help="the time to verify at (default: now)")
    verify.add_argument("--tz", default="UTC", metavar="ZONE")
    verify.add_argument("--holder-key", metavar="FILE")
    verify.add_argument("--revocations", metavar="TOKEN")
    verify.add_argument("--uses-so-far", type=int, default=0, metavar="N")
    verify.set_defaults(handler=_verify)
