"""Fuzzing the audit leaf decoders (:mod:`store.entry`, :mod:`store.commitment`) and the
owner's reading of a leaf the relay hands back (:func:`gateway.clients.owner_log.open_leaf`).

Leaves reach these decoders from outside: the relay serves them to the owner (and a sealed
box needs only the owner's *public* key, so a hostile relay can seal anything), a courier's
receipt carries one, and a thief with the disk can write any column. Only
:class:`~store.errors.InvalidEntry` (and :class:`~gateway.trust.seal.SealError` for a seal
that does not open) may escape, so the owner's log lists a problem instead of crashing, and
:func:`~store.commitment.check_row` never raises at all: it answers with a verdict.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from gateway.clients.owner_log import open_leaf
from gateway.trust.seal import Sealer, SealError, Unsealer
from store import commitment
from store.entry import AuditEntry, canonical_bytes, decode_entry
from store.errors import InvalidEntry
from tests.fuzz.fuzzing import ANY_TEXT, FUZZ, JSON, mutated, only

OWNER = SigningKey(bytes(range(1, 33)))
UNSEALER = Unsealer(bytes(OWNER) + bytes(OWNER.verify_key))
SEALER = Sealer(bytes(OWNER.verify_key))
KEY = commitment.CommitmentKey(bytes(32))
ENTRY = {"b": {"session": "s-1", "door": "front"}, "i": 7, "k": "session.granted", "t": 1, "v": 1}
CANONICAL = canonical_bytes(AuditEntry(7, 1, "session.granted", ENTRY["b"]))


def encoded(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


ENTRY_BYTES = (
    st.binary(max_size=200)
    | mutated(ENTRY, tuple(ENTRY)).map(encoded)
    | st.integers(4000, 6000).map(lambda n: CANONICAL.replace(b'"i":7', b'"i":' + b"7" * n))
)


@FUZZ
@given(ENTRY_BYTES)
# An index of 5,000 digits: int()'s ValueError escaped decode_entry (bug found here).
@example(CANONICAL.replace(b'"i":7', b'"i":' + b"7" * 5000))
def test_entry_decoding_raises_only_invalid_entry(data: bytes) -> None:
    entry = only(InvalidEntry, lambda: decode_entry(data))
    if entry is not None:
        assert canonical_bytes(entry) == data


@FUZZ
@given(ENTRY_BYTES, st.booleans(), st.binary(min_size=32, max_size=32))
def test_opening_a_sealed_leaf_raises_only_invalid_entry_or_seal_error(
    canonical: bytes, format_2: bool, entry_key: bytes
) -> None:
    """What a hostile relay can serve the owner: any canonical bytes, properly sealed."""
    if format_2:
        payload = commitment.sealed_payload(entry_key, canonical)
        tags = bytes(commitment.TAGS_BYTES)
        leaf = commitment.format2_leaf(tags, only(SealError, lambda: SEALER.seal(payload)) or b"")
    else:
        leaf = only(SealError, lambda: SEALER.seal(canonical)) or b""
    only((InvalidEntry, SealError), lambda: open_leaf(UNSEALER, leaf))


@FUZZ
@given(st.binary(max_size=1200))
def test_raw_leaves_raise_only_invalid_entry_or_seal_error(leaf: bytes) -> None:
    commitment.leaf_form(leaf)
    only(InvalidEntry, lambda: commitment.open_payload(leaf))
    only((InvalidEntry, SealError), lambda: open_leaf(UNSEALER, leaf))


COLUMN = JSON | ANY_TEXT | st.integers()


@FUZZ
@given(
    st.integers(-5, 2**63),
    COLUMN,
    COLUMN,
    COLUMN | ANY_TEXT.map(lambda t: "{" + t),
    st.booleans() | st.integers() | st.none(),
    st.binary(max_size=700) | ENTRY_BYTES,
    st.booleans(),
)
def test_checking_a_stored_row_never_raises(
    index: int, time_ms: Any, kind: Any, body: Any, sealed: Any, leaf: bytes, keyed: bool
) -> None:
    """Columns as a thief with the disk can write them: a verdict, never an exception."""
    verdict = commitment.check_row(index, time_ms, kind, body, sealed, leaf, KEY if keyed else None)
    assert isinstance(verdict, commitment.RowVerdict)
