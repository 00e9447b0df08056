"""A phone's check of its visit receipt, written from docs/api.md ("Receipts") alone: no
Threshold code, ``cryptography``'s Ed25519 rather than PyNaCl, RFC 9162's audit-path walk
written out here. Inputs: the receipt JSON, the gateway's Ed25519 public key, and the proof
of possession the phone sent to open the door."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def _root_from_path(leaf_hash: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """RFC 9162, 2.1.3.2: verifying an inclusion proof."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def check_visit_receipt(
    receipt: dict[str, Any], gateway_public_key: bytes, proof: bytes, gateway_id: str
) -> str | None:
    """None when the receipt proves this phone's visit is in the gateway's signed log; else
    the first step that failed."""
    signed = receipt["checkpoint"]["note"]
    cut = signed.rindex("\n\n")
    text, lines = signed[: cut + 1], signed[cut + 2 :].rstrip("\n").split("\n")
    origin, size_text, root_b64 = text[:-1].split("\n")
    if origin != f"threshold.example/gw/{gateway_id}":
        return "origin"
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + gateway_public_key).digest()[:4]
    good = False
    for line in lines:
        name, blob_b64 = line.removeprefix("\u2014 ").split(" ")
        blob = base64.b64decode(blob_b64)
        if name != origin or blob[:4] != key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(gateway_public_key).verify(blob[4:], text.encode())
        except InvalidSignature:
            return "signature"
        good = True
    if not good:
        return "signature"
    leaf = base64.b64decode(receipt["leaf_bytes"])
    path = [base64.b64decode(p) for p in receipt["inclusion_proof"]]
    root = _root_from_path(
        hashlib.sha256(b"\x00" + leaf).digest(), receipt["index"], int(size_text), path
    )
    if root != base64.b64decode(root_b64):
        return "inclusion"
    v = hashlib.sha256(b"threshold-visit/v1\n" + proof).digest()
    tag = hmac.digest(v, b"threshold-visit-tag/v1" + struct.pack(">Q", receipt["index"]), "sha256")
    if leaf[:1] != b"\x03" or not hmac.compare_digest(leaf[49:65], tag[:16]):
        return "visit_tag"
    return None
