"""The sync protocol's messages: upload batches, cosignatures, signed time, receipts.

Upload batch (``application/x-threshold-batch``), binary so that sealed entries cost their
own size on the wire, not base64's 4/3::

    "TSB1" || u32 header length || header (JSON, UTF-8) || count x (u32 length || sealed bytes)

The header holds ``gateway``, ``start`` (index of the first entry), ``count``, the gateway's
latest signed ``checkpoint`` (``SignedCheckpoint.to_json``) and ``proof``: the RFC 9162
consistency proof from the tree of size ``start + count`` to the checkpoint's tree, so the relay
can check every batch against a signed root even when the checkpoint is ahead of the batch.

Cosignature: the relay's Ed25519 signature over ``threshold-cosignature/v1\\n<relay id>\\n``
followed by the checkpoint's own signed message. Signed time: over
``threshold-time/v1\\n<relay id>\\n<unix ms>\\n<client nonce>\\n``.

Pure: no I/O. Every decoder raises :class:`MalformedMessage` on any bad input, including the
inputs Python's own parsers choke on: JSON nested deeper than the parser's recursion limit,
and numbers longer than the int-string conversion limit (:func:`parse_json`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from cloud.errors import CloudError
from store import cosignature
from store.checkpoint import Checkpoint, Format, SignedCheckpoint
from store.errors import InvalidEntry
from store.note import NoteSignature

MAGIC = b"TSB1"
BATCH_CONTENT_TYPE = "application/x-threshold-batch"
MAX_BATCH_ENTRIES = 500
MAX_BATCH_BYTES = 1024 * 1024
MAX_ENTRY_BYTES = 160 * 1024
MAX_HEADER_BYTES = 64 * 1024
_U32 = struct.Struct(">I")
#: Every integer on the wire fits a signed 64-bit SQL INTEGER.
MAX_INT = 2**63 - 1
COSIGNATURE_LINE = b"threshold-cosignature/v1\n"
TIME_LINE = "threshold-time/v1"


class MalformedMessage(CloudError):
    """A protocol message does not parse or breaks a limit."""

    code = "malformed"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedMessage(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage(f"{what} is not base64") from None


def parse_json(data: bytes, what: str) -> Any:
    """JSON from outside. A body nested too deep raises RecursionError in the parser, and a
    number of more than 4,300 digits ValueError: both are just malformed input here."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise MalformedMessage(f"{what} is not JSON") from None


#: A gateway id as a checkpoint's origin spells it (store.checkpoint): printable ASCII, no
#: spaces. Checked on the way in, so a lone surrogate or a newline never reaches the storage
#: layer (SQLite cannot encode a surrogate: that was a 500).
_GATEWAY_ID = re.compile(r"[\x21-\x7e]{1,128}")


def _gateway(value: object, what: str) -> str:
    if not isinstance(value, str) or _GATEWAY_ID.fullmatch(value) is None:
        raise MalformedMessage(f"{what} is not a gateway id (printable ASCII, no spaces)")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise MalformedMessage(f"{what} is not an integer from 0 to 2^63-1")
    return value


def checkpoint_from_json(data: object) -> SignedCheckpoint:
    """A checkpoint in its JSON form (``SignedCheckpoint.to_json``): a ``note`` member is a
    C2SP signed note, and every other member given must repeat it; without ``note``, the
    ``threshold-checkpoint/v1`` members."""
    if not isinstance(data, dict):
        raise MalformedMessage("checkpoint is not an object")
    if "note" in data:
        return _note_from_json(data)
    origin = data.get("origin")
    if not isinstance(origin, str):
        raise MalformedMessage("checkpoint origin is not a string")
    root = unb64(data.get("root_hash"), "checkpoint root")
    signature = unb64(data.get("signature"), "checkpoint signature")
    if data.get("format", Format.LEGACY.value) != Format.LEGACY.value:
        raise MalformedMessage("a checkpoint without a note is threshold-checkpoint/v1")
    size = _int(data.get("tree_size"), "tree size")
    cp = Checkpoint(origin, size, root, _int(data.get("time_ms"), "time"), Format.LEGACY)
    try:
        cp.message()
    except InvalidEntry as exc:
        raise MalformedMessage(f"checkpoint: {exc.message}") from None
    if len(signature) != 64:
        raise MalformedMessage("checkpoint signature is not 64 bytes")
    return SignedCheckpoint(cp, signature)


def _note_from_json(data: dict[str, Any]) -> SignedCheckpoint:
    text = data["note"]
    if not isinstance(text, str):
        raise MalformedMessage("checkpoint note is not a string")
    time_ms = _int(data.get("time_ms", 0), "time")
    try:
        signed = SignedCheckpoint.from_note(text, time_ms)
    except InvalidEntry as exc:
        raise MalformedMessage(f"checkpoint: {exc.message}") from None
    shown = signed.to_json()
    for name in ("format", "origin", "tree_size", "root_hash"):
        if name in data and data[name] != shown[name]:
            raise MalformedMessage(f"checkpoint {name} disagrees with its note")
    return signed


def proof_from_json(data: object) -> list[bytes]:
    if not isinstance(data, list) or len(data) > 128:
        raise MalformedMessage("proof is not a list of hashes")
    proof = [unb64(item, "proof hash") for item in data]
    if any(len(p) != 32 for p in proof):
        raise MalformedMessage("proof hashes are 32 bytes")
    return proof


@dataclass(frozen=True)
class UploadBatch:
    gateway: str
    start: int
    entries: tuple[bytes, ...]
    checkpoint: SignedCheckpoint
    proof: tuple[bytes, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.entries)


def encode_batch(batch: UploadBatch) -> bytes:
    header = json.dumps(
        {
            "gateway": batch.gateway,
            "start": batch.start,
            "count": len(batch.entries),
            "checkpoint": batch.checkpoint.to_json(),
            "proof": [b64(p) for p in batch.proof],
        },
        separators=(",", ":"),
    ).encode()
    parts = [MAGIC, _U32.pack(len(header)), header]
    for sealed in batch.entries:
        parts.append(_U32.pack(len(sealed)))
        parts.append(sealed)
    return b"".join(parts)


def decode_batch(body: bytes) -> UploadBatch:
    view = memoryview(body)
    if len(body) < 8 or bytes(view[:4]) != MAGIC:
        raise MalformedMessage("not an upload batch (bad magic)")
    (header_len,) = _U32.unpack_from(body, 4)
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(body):
        raise MalformedMessage("batch header length is out of range")
    header = parse_json(bytes(view[8 : 8 + header_len]), "batch header")
    if not isinstance(header, dict):
        raise MalformedMessage("batch header is not an object")
    gateway = _gateway(header.get("gateway"), "batch gateway")
    count = _int(header.get("count"), "count")
    if count > MAX_BATCH_ENTRIES:
        raise MalformedMessage(f"a batch holds at most {MAX_BATCH_ENTRIES} entries")
    entries: list[bytes] = []
    offset = 8 + header_len
    for _ in range(count):
        if offset + 4 > len(body):
            raise MalformedMessage("batch is truncated")
        (length,) = _U32.unpack_from(body, offset)
        offset += 4
        if length > MAX_ENTRY_BYTES or offset + length > len(body):
            raise MalformedMessage("batch entry length is out of range")
        entries.append(bytes(view[offset : offset + length]))
        offset += length
    if offset != len(body):
        raise MalformedMessage("batch has trailing bytes")
    return UploadBatch(
        gateway=gateway,
        start=_int(header.get("start"), "start"),
        entries=tuple(entries),
        checkpoint=checkpoint_from_json(header.get("checkpoint")),
        proof=tuple(proof_from_json(header.get("proof"))),
    )


def cosignature_message(relay_id: str, checkpoint: Checkpoint) -> bytes:
    """The legacy cosignature's message, for a ``threshold-checkpoint/v1`` checkpoint."""
    return COSIGNATURE_LINE + relay_id.encode() + b"\n" + checkpoint.message()


def cosign(key: SigningKey, relay_id: str, checkpoint: Checkpoint, now_s: int) -> bytes:
    """The relay's cosignature: for a note checkpoint a C2SP ``tlog-cosignature`` (key name
    ``relay_id``; the bytes are key ID || u64 time || signature, the base64 of a note
    signature line), for a legacy checkpoint the ``threshold-cosignature/v1`` signature."""
    if checkpoint.format is Format.NOTE:
        return cosignature.cosign(key, relay_id, checkpoint.note_text(), now_s).blob
    return bytes(key.sign(cosignature_message(relay_id, checkpoint)).signature)


def verify_cosignature(
    relay_key: bytes, relay_id: str, checkpoint: Checkpoint, signature: bytes
) -> bool:
    try:
        if checkpoint.format is Format.NOTE:
            cosignature.check(
                cosignature.verifier(relay_id, relay_key),
                checkpoint.note_text(),
                NoteSignature(relay_id, signature),
            )
            return True
        VerifyKey(relay_key).verify(cosignature_message(relay_id, checkpoint), signature)
    except (BadSignatureError, ValueError, InvalidEntry):
        return False
    return True


def time_message(relay_id: str, time_ms: int, nonce: str) -> bytes:
    return f"{TIME_LINE}\n{relay_id}\n{time_ms}\n{nonce}\n".encode()


@dataclass(frozen=True)
class SignedTime:
    relay_id: str
    time_ms: int
    nonce: str
    signature: bytes

    def verify(self, relay_key: bytes) -> bool:
        try:
            VerifyKey(relay_key).verify(
                time_message(self.relay_id, self.time_ms, self.nonce), self.signature
            )
        except (BadSignatureError, ValueError):
            return False
        return True


@dataclass(frozen=True)
class WireReceipt:
    """A courier's receipt: a signed checkpoint and the session's entries with their proofs.

    ``entries`` maps an index to (sealed leaf bytes, inclusion proof into the checkpoint).
    """

    gateway: str
    checkpoint: SignedCheckpoint
    entries: tuple[tuple[int, bytes, tuple[bytes, ...]], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "checkpoint": self.checkpoint.to_json(),
            "entries": [
                {"index": i, "leaf": b64(leaf), "proof": [b64(p) for p in proof]}
                for i, leaf, proof in self.entries
            ],
        }

    @classmethod
    def from_json(cls, data: object) -> WireReceipt:
        """A receipt in this wire form, or as the gateway's ``done`` answer gives it (one
        entry: ``index``, ``leaf_bytes``, ``inclusion_proof``, ``checkpoint``)."""
        if isinstance(data, dict) and "leaf_bytes" in data:
            checkpoint = checkpoint_from_json(data.get("checkpoint"))
            entry = (
                _int(data.get("index"), "receipt index"),
                unb64(data.get("leaf_bytes"), "receipt leaf"),
                tuple(proof_from_json(data.get("inclusion_proof"))),
            )
            gateway = checkpoint.checkpoint.gateway_id
            if gateway is None:
                raise MalformedMessage("the receipt's checkpoint names no gateway")
            return cls(_gateway(gateway, "receipt gateway"), checkpoint, (entry,))
        if not isinstance(data, dict):
            raise MalformedMessage("receipt is not an object with a gateway")
        gateway = _gateway(data.get("gateway"), "receipt gateway")
        raw_entries = data.get("entries")
        if not isinstance(raw_entries, list) or len(raw_entries) > 64:
            raise MalformedMessage("receipt entries are not a short list")
        entries: list[tuple[int, bytes, tuple[bytes, ...]]] = []
        for item in raw_entries:
            if not isinstance(item, dict):
                raise MalformedMessage("receipt entry is not an object")
            entries.append(
                (
                    _int(item.get("index"), "receipt index"),
                    unb64(item.get("leaf"), "receipt leaf"),
                    tuple(proof_from_json(item.get("proof"))),
                )
            )
        checkpoint = checkpoint_from_json(data.get("checkpoint"))
        return cls(gateway, checkpoint, tuple(entries))
