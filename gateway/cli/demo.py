"""``threshold demo``: the ticket round trip, told as a short timeline.

It plays every party with real keys and real signatures: the owner certifies a delivery
company, the company issues a ticket to a courier's phone, the gateway challenges the phone
and verifies ticket, certificate and proof of possession. Then it shows the gateway refusing a
forged ticket, a replayed one and an expired one. Key files go in ``--dir`` (mode 0600), or in
a temporary directory that is removed afterwards. Later issues grow this into the full
gateway demo (lock, camera, audit log).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway import paseto
from gateway.certificate import IssuerCertificate, sign_certificate
from gateway.cli import inputs
from gateway.keys import TrustAnchors, generate_secret_key, key_id, public_key_of
from gateway.proof import ChallengeRecord, new_challenge, sign_proof
from gateway.reasons import Reason
from gateway.ticket import Delivery, Purpose, Ticket, package_hash, sign_ticket
from gateway.tickets import Verdict, verify_ticket

GATEWAY = "gw-demo"
DOOR = "front"


class _Gateway:
    """The gateway's state as the store will keep it: issued challenges and use counts."""

    def __init__(self, anchors: TrustAnchors) -> None:
        self.anchors = anchors
        self.zone = ZoneInfo("Europe/London")
        self.challenges: dict[bytes, ChallengeRecord] = {}
        self.uses: dict[str, int] = {}

    def challenge(self, now: datetime) -> ChallengeRecord:
        record = new_challenge(GATEWAY, now)
        self.challenges[record.nonce] = record
        return record

    def request(self, token: str, nonce: bytes, proof: bytes, now: datetime) -> Verdict:
        record = self.challenges.pop(nonce, None)  # single use
        jti = _peek_jti(token)
        verdict = verify_ticket(
            token,
            anchors=self.anchors,
            gateway_id=GATEWAY,
            door=DOOR,
            now=now,
            zone=self.zone,
            challenge=record,
            proof=proof,
            uses_so_far=self.uses.get(jti, 0),
        )
        if verdict.allowed and verdict.claims is not None:
            self.uses[verdict.claims.jti] = self.uses.get(verdict.claims.jti, 0) + 1
        return verdict


def _peek_jti(token: str) -> str:
    try:
        return str(json.loads(paseto.peek(token)[0]).get("jti", ""))
    except (paseto.PasetoError, ValueError, AttributeError):
        return ""


def _key(directory: Path, name: str) -> bytes:
    path = directory / f"{name}.key"
    if path.exists():  # a kept --dir: the same household as last time
        return inputs.read_secret_key(str(path))
    secret = generate_secret_key()
    inputs.write_secret_key(str(path), secret)
    return secret


def _show(step: str, verdict: Verdict) -> None:
    outcome = "ALLOW" if verdict.allowed else "DENY "
    print(f"{step:<50} -> {outcome} {verdict.reason.value}")


def _run_in(directory: Path) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    print(f"Threshold ticket round trip (gateway {GATEWAY}, door {DOOR}); keys in {directory}")
    owner = _key(directory, "owner")
    issuer = _key(directory, "issuer")
    phone = _key(directory, "holder")
    print(
        f"1. keys: owner {key_id(public_key_of(owner))[:20]}..., "
        f"issuer {key_id(public_key_of(issuer))[:20]}..., "
        f"courier phone {key_id(public_key_of(phone))[:20]}..."
    )

    cert = sign_certificate(
        IssuerCertificate(
            sub="ACME Parcels",
            key=public_key_of(issuer),
            aud=GATEWAY,
            jti="cert-acme-1",
            iat=now,
            nbf=now - timedelta(minutes=5),
            exp=now + timedelta(days=90),
            doors=(DOOR,),
            purposes=(Purpose.DELIVERY,),
            max_ticket_s=8 * 3600,
            max_uses=1,
        ),
        owner,
    )
    (directory / "issuer.cert").write_text(cert + "\n")
    print("2. owner certifies ACME Parcels: door front, deliveries only, tickets <= 8 h, 1 use")

    ticket = Ticket(
        iss="ACME Parcels",
        sub="Alice Courier",
        aud=GATEWAY,
        jti="t-parcel-42",
        iat=now,
        nbf=now - timedelta(minutes=5),
        exp=now + timedelta(hours=2),
        door=DOOR,
        purpose=Purpose.DELIVERY,
        cnf=public_key_of(phone),
        delivery=Delivery("order-42", (package_hash("1Z999AA10123456784"),)),
        open_s=45,
    )
    token = sign_ticket(ticket, issuer, cert)
    (directory / "ticket.token").write_text(token + "\n")
    print(
        f"3. ACME issues ticket {ticket.jti} to Alice's phone ({len(token)} characters, "
        "certificate in its footer)"
    )

    gateway = _Gateway(TrustAnchors.of(public_key_of(owner)))

    def visit(tok: str, jti: str, at: datetime, key: bytes = phone) -> tuple[Verdict, bytes]:
        challenge = gateway.challenge(at)
        proof = sign_proof(key, GATEWAY, challenge.nonce, jti, "open")
        return gateway.request(tok, challenge.nonce, proof, at), proof

    verdict, proof = visit(token, ticket.jti, now)
    _show("4. challenge signed by the phone: the delivery", verdict)
    refused = 0

    # A forgery: the courier edits the door in the signed claims; the signature stays.
    message, footer = paseto.peek(token)
    forged_body = message.replace(b'"door":"front"', b'"door":"back"', 1)
    body = paseto.b64decode(token.split(".")[2])
    forged = "v4.public." + paseto.b64encode(forged_body + body[-64:])
    forged += "." + paseto.b64encode(footer)
    v, _ = visit(forged, ticket.jti, now)
    _show("5. forged ticket (claims edited)", v)
    refused += v.reason is Reason.BAD_SIGNATURE

    stolen = sign_ticket(ticket, generate_secret_key(), cert)
    v, _ = visit(stolen, ticket.jti, now)
    _show("   ticket signed by an uncertified key", v)
    refused += v.reason is Reason.UNKNOWN_KEY

    v, _ = visit(token, ticket.jti, now + timedelta(minutes=1))
    _show("6. replayed ticket (its one use is spent)", v)
    refused += v.reason is Reason.USES_EXHAUSTED

    # Replaying the captured proof with a fresh challenge: the nonce no longer matches.
    gateway.uses.clear()
    fresh = gateway.challenge(now)
    v = gateway.request(token, fresh.nonce, proof, now)
    _show("   sniffed proof replayed on a new challenge", v)
    refused += v.reason is Reason.BAD_PROOF

    late = now + timedelta(hours=3)
    v, _ = visit(token, ticket.jti, late)
    _show("7. expired ticket (3 hours later)", v)
    refused += v.reason is Reason.EXPIRED

    ok = verdict.allowed and refused == 5
    print("round trip " + ("complete: 1 entry allowed, 5 attempts refused" if ok else "FAILED"))
    return 0 if ok else 1


def _run(args: argparse.Namespace) -> int:
    if args.dir is not None:
        directory = Path(args.dir)
        directory.mkdir(parents=True, exist_ok=True)
        return _run_in(directory)
    with tempfile.TemporaryDirectory(prefix="threshold-demo-") as tmp:
        return _run_in(Path(tmp))


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run the ticket round trip and print a timeline")
    parser.add_argument("--dir", metavar="DIR", help="keep the keys and tokens in DIR")
    parser.set_defaults(handler=_run)
