"""docs/api.md's worked receipt example verifies with only the gateway's public key and the
visitor's proof, by a verifier written from that section alone; and fails for anyone else's
proof or a touched receipt."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.support.phone_receipt import check_visit_receipt

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _example() -> dict[str, Any]:
    text = DOC.read_text("utf-8")
    found = re.search(r"<!-- receipt-example -->\n```json\n(.*?)\n```", text, re.S)
    assert found is not None, "docs/api.md lost its receipt example"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _documented(name: str) -> str:
    found = re.search(rf"^    {re.escape(name)}\s+= ([0-9a-f]+)", DOC.read_text("utf-8"), re.M)
    assert found is not None, name
    return found.group(1)


def test_the_worked_example_verifies_with_the_public_key_and_the_proof_only() -> None:
    ex = _example()
    key = base64.b64decode(ex["gateway_public_key"])
    proof = base64.b64decode(ex["proof"])
    assert check_visit_receipt(ex["receipt"], key, proof, "gw-example") is None


def test_the_documented_intermediate_values() -> None:
    ex = _example()
    proof = base64.b64decode(ex["proof"])
    receipt = ex["receipt"]
    leaf = base64.b64decode(receipt["leaf_bytes"])
    v = hashlib.sha256(b"threshold-visit/v1\n" + proof).digest()
    assert v.hex() == _documented("v")
    tag = hmac.digest(v, b"threshold-visit-tag/v1" + struct.pack(">Q", receipt["index"]), "sha256")
    assert tag[:16].hex() == _documented("visit_tag")
    assert hashlib.sha256(b"\x00" + leaf).hexdigest() == _documented("leaf hash")
    key = base64.b64decode(ex["gateway_public_key"])
    origin = receipt["checkpoint"]["origin"]
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + key).digest()[:4]
    assert key_id.hex() == _documented("key ID")


def test_someone_elses_proof_or_a_touched_receipt_fails() -> None:
    ex = _example()
    key = base64.b64decode(ex["gateway_public_key"])
    proof = base64.b64decode(ex["proof"])
    other = bytes([proof[0] ^ 1]) + proof[1:]
    assert check_visit_receipt(ex["receipt"], key, other, "gw-example") == "visit_tag"
    assert check_visit_receipt(ex["receipt"], key, proof, "gw-other") == "origin"

    moved = copy.deepcopy(ex["receipt"])
    moved["index"] = moved["index"] - 1
    assert check_visit_receipt(moved, key, proof, "gw-example") == "inclusion"

    leaf = bytearray(base64.b64decode(ex["receipt"]["leaf_bytes"]))
    leaf[60] ^= 1
    forged = {**ex["receipt"], "leaf_bytes": base64.b64encode(bytes(leaf)).decode()}
    assert check_visit_receipt(forged, key, proof, "gw-example") == "inclusion"

    note = ex["receipt"]["checkpoint"]["note"]
    lying = note.replace("\n8\n", "\n9\n", 1)
    assert lying != note
    changed = {**ex["receipt"], "checkpoint": {**ex["receipt"]["checkpoint"], "note": lying}}
    assert check_visit_receipt(changed, key, proof, "gw-example") == "signature"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_the_phone_side_audit_path_walk_agrees_with_the_store(size: int) -> None:
    """The hand-written RFC 9162 walk is itself checked against the store's tree."""
    from store import merkle
    from tests.support.phone_receipt import _root_from_path

    leaves = [merkle.leaf_hash(b"%d" % i) for i in range(size)]
    tree = merkle.MemoryTree(leaves)
    for index in range(size):
        path = merkle.inclusion_proof(tree, index, size)
        assert _root_from_path(leaves[index], index, size, path) == merkle.root_at(tree, size)
