"""docs/tickets.md's worked proof example is what the code produces (and verifies)."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.trust.keys import public_key_of, secret_key_from_seed
from gateway.trust.paseto import b64encode
from gateway.trust.proof import proof_message, proof_valid, sign_proof
from gateway.trust.reasons import Reason

DOC = (Path(__file__).resolve().parents[2] / "docs" / "tickets.md").read_text()


def _block(marker: str) -> bytes:
    match = re.search(rf"<!-- {marker} -->\n```\n(.*?)```", DOC, re.S)
    assert match is not None, marker
    return bytes.fromhex("".join(match.group(1).split()))


def test_worked_proof_example_matches_the_code() -> None:
    nonce = bytes(range(32))
    message = proof_message("gw-home-1", nonce, "t-0001", "open")
    assert _block("proof-example-message") == message
    holder = secret_key_from_seed(bytes([7]) * 32)
    assert b64encode(public_key_of(holder)) in DOC
    signature = sign_proof(holder, "gw-home-1", nonce, "t-0001", "open")
    assert _block("proof-example-signature") == signature
    assert proof_valid(public_key_of(holder), signature, "gw-home-1", nonce, "t-0001", "open")


def test_every_reason_code_is_documented() -> None:
    for reason in Reason:
        assert f"`{reason.value}`" in DOC, reason
