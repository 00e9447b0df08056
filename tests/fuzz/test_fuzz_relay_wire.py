"""Fuzzing the relay's wire format (:mod:`cloud.wire`): upload batches (a binary frame around a
JSON header), signed checkpoints, inclusion proofs and courier receipts, and the JSON the
relay reads from outside. Only :class:`~cloud.wire.MalformedMessage` may escape: the relay
turns it into a 400, anything else would be a 500 on its single storage thread.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from cloud.wire import (
    MAGIC,
    MalformedMessage,
    UploadBatch,
    WireReceipt,
    checkpoint_from_json,
    decode_batch,
    encode_batch,
    parse_json,
    proof_from_json,
)
from store.checkpoint import Checkpoint, SignedCheckpoint, log_origin
from tests.fuzz.fuzzing import FUZZ, JSON, mutated, only

# A C2SP note checkpoint (origin threshold.example/gw/<id>, a key ID and a signature).
CHECKPOINT = SignedCheckpoint(
    Checkpoint(log_origin("gw-home-1"), 3, bytes(32), 1_700_000_000_000), bytes(64), bytes(4)
)
CHECKPOINT_JSON = CHECKPOINT.to_json()
BATCH = UploadBatch("gw-home-1", 0, (b"a" * 40, b"b" * 50, b"c"), CHECKPOINT, (bytes(32),))
RECEIPT = WireReceipt("gw-home-1", CHECKPOINT, ((2, b"leaf", (bytes(32), bytes(32))),)).to_json()
DONE_RECEIPT = {
    "index": 2,
    "leaf_bytes": base64.b64encode(b"leaf").decode(),
    "inclusion_proof": [base64.b64encode(bytes(32)).decode()],
    "checkpoint": CHECKPOINT_JSON,
}
B64ISH = st.binary(max_size=70).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=20)


@FUZZ
@given(st.binary(max_size=400) | st.binary(max_size=300).map(lambda b: MAGIC + b))
def test_raw_batches_raise_only_malformed(body: bytes) -> None:
    only(MalformedMessage, lambda: decode_batch(body))


@st.composite
def framed_batches(draw: st.DrawFn) -> bytes:
    """A real batch's frame with its JSON header, counts and lengths tampered with."""
    header: dict[str, Any] = {
        "gateway": BATCH.gateway,
        "start": BATCH.start,
        "count": len(BATCH.entries),
        "checkpoint": CHECKPOINT_JSON,
        "proof": [base64.b64encode(p).decode() for p in BATCH.proof],
    }
    header = draw(mutated(header, tuple(header)))
    if draw(st.booleans()):
        header["checkpoint"] = draw(mutated(CHECKPOINT_JSON, tuple(CHECKPOINT_JSON)))
    if draw(st.booleans()):
        header["proof"] = draw(st.lists(B64ISH | JSON, max_size=4))
    text = json.dumps(header).encode()
    lengths = draw(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 60), max_size=4))
    entries = b"".join(struct.pack(">I", n) + b"x" * min(n, 60) for n in lengths)
    declared = draw(st.sampled_from([len(text), len(text) + 1, max(0, len(text) - 1), 2**32 - 1]))
    return MAGIC + struct.pack(">I", declared) + text + entries + draw(st.binary(max_size=4))


@FUZZ
@given(framed_batches())
def test_tampered_batches_raise_only_malformed(body: bytes) -> None:
    batch = only(MalformedMessage, lambda: decode_batch(body))
    if batch is not None:
        assert sound_gateway_id(batch.gateway), batch.gateway


def test_a_real_batch_round_trips() -> None:
    """The control: the tampering above starts from a batch that decodes."""
    assert decode_batch(encode_batch(BATCH)) == BATCH


@FUZZ
@given(JSON | mutated(CHECKPOINT_JSON, tuple(CHECKPOINT_JSON)))
def test_checkpoints_and_proofs_raise_only_malformed(data: Any) -> None:
    only(MalformedMessage, lambda: checkpoint_from_json(data))
    only(MalformedMessage, lambda: proof_from_json(data))
    only(MalformedMessage, lambda: WireReceipt.from_json(data))


def sound_gateway_id(text: str) -> bool:
    """What the relay's storage can take: a gateway id as a checkpoint's origin spells it."""
    return re.fullmatch(r"[\x21-\x7e]{1,128}", text) is not None


@FUZZ
@given(mutated(RECEIPT, tuple(RECEIPT)) | mutated(DONE_RECEIPT, tuple(DONE_RECEIPT)))
# A lone surrogate as the gateway: decoded, then SQLite could not encode it, a 500 with a
# traceback on the relay's unauthenticated POST /v1/receipts (bug found here).
@example({**RECEIPT, "gateway": "\ud800"})
@example({**RECEIPT, "gateway": "gw home\n"})
def test_receipts_raise_only_malformed(data: dict[str, Any]) -> None:
    for item in (data, parse_json(json.dumps(data).encode(), "receipt")):
        receipt = only(MalformedMessage, lambda item=item: WireReceipt.from_json(item))
        if receipt is not None:
            assert sound_gateway_id(receipt.gateway), receipt.gateway


@FUZZ
@given(
    st.binary(max_size=200)
    | st.integers(0, 200).map(lambda n: b"[" * n * 20)
    | st.integers(4000, 6000).map(lambda n: b"9" * n)
    | st.text(max_size=60).map(lambda t: json.dumps(t).encode())
)
def test_json_from_outside_raises_only_malformed(data: bytes) -> None:
    only(MalformedMessage, lambda: parse_json(data, "body"))
