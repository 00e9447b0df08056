"""Ticket verification speed, against raw libsodium and against pyseto, in one run.

Prints ONE JSON line. Absolute rates depend on the (shared, noisy) machine; the ratios are
what to compare: each rate is the best of several interleaved rounds of process CPU time,
measured in the same process on the same token.

* raw_verify_per_s: PyNaCl Ed25519 verify of a message the size of the token's signed bytes.
* paseto_verify_per_s: gateway.trust.paseto.verify of a delegated ticket (certificate in
  the footer).
* ticket_verify_per_s: the full gateway.trust.verification.verify_ticket on that ticket:
  certificate, ticket and proof of possession, i.e. three signatures, plus every claim check.
* pyseto_verify_per_s: pyseto.decode of the same token.
* ticket_verify_uncached_per_s: the full verify with the parse caches emptied first, as for
  the first ticket of an issuer the gateway has not seen yet (signatures are never cached).

Run: .venv/bin/python bench/tickets.py [--seconds 0.2] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyseto
from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.trust import certificate, envelope, paseto
from gateway.trust.envelope import TokenKind
from gateway.trust.keys import public_key_of
from gateway.trust.verification import verify_ticket
from tests.support.tickets import DOOR, GATEWAY, NOW, ZONE, Household


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per CPU-second of this process over about ``seconds`` of its CPU time.

    CPU time, not wall time: on a shared machine the scheduler's pauses would otherwise land
    on whichever case happened to be running.
    """
    n = 0
    batch = 20
    start = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.process_time()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    home = Household()
    token = home.delegated()
    issuer_pub = public_key_of(home.issuer)
    assertion = TokenKind.TICKET.value
    message, footer = paseto.verify(token, issuer_pub, None, assertion)
    signed_len = len(paseto.pae(b"v4.public.", message, footer, assertion))

    raw_key = SigningKey.generate()
    raw_message = bytes(signed_len)
    raw_signature = raw_key.sign(raw_message).signature
    raw_verify_key = raw_key.verify_key

    peer_key = pyseto.Key.from_asymmetric_key_params(4, x=issuer_pub)
    challenge = home.challenge()
    proof = home.proof(challenge)

    def raw() -> object:
        return raw_verify_key.verify(raw_message, raw_signature)

    def ours() -> object:
        return paseto.verify(token, issuer_pub, None, assertion)

    def peer() -> object:
        return pyseto.decode(peer_key, token, implicit_assertion=assertion)

    def full() -> object:
        verdict = verify_ticket(
            token,
            anchors=home.anchors,
            gateway_id=GATEWAY,
            door=DOOR,
            now=NOW,
            zone=ZONE,
            challenge=challenge,
            proof=proof,
        )
        assert verdict.allowed
        return verdict

    def cold() -> object:
        # A first-seen issuer: nothing cached (footer, certificate parse).
        envelope._footer.cache_clear()
        certificate._unwrap_certificate.cache_clear()
        certificate._certificate_from_message.cache_clear()
        return full()

    # Sanity: all four accept.
    assert peer().payload == message  # type: ignore[attr-defined]
    full()

    best: dict[str, float] = {"raw": 0.0, "ours": 0.0, "peer": 0.0, "full": 0.0, "cold": 0.0}
    cases = {"raw": raw, "ours": ours, "peer": peer, "full": full, "cold": cold}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            best[name] = max(best[name], rate(fn, args.seconds))

    print(
        json.dumps(
            {
                "bench": "tickets",
                "token_chars": len(token),
                "signed_bytes": signed_len,
                "raw_verify_per_s": round(best["raw"]),
                "paseto_verify_per_s": round(best["ours"]),
                "ticket_verify_per_s": round(best["full"]),
                "pyseto_verify_per_s": round(best["peer"]),
                "ticket_verify_uncached_per_s": round(best["cold"]),
                "paseto_vs_raw": round(best["ours"] / best["raw"], 3),
                "ticket_vs_raw3": round(best["full"] * 3 / best["raw"], 3),
                "paseto_vs_pyseto": round(best["ours"] / best["peer"], 3),
                "ticket_uncached_vs_raw3": round(best["cold"] * 3 / best["raw"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
