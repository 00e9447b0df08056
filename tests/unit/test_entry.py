"""The canonical entry encoding: one byte form per entry, and refusals for what has none."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.entry import (
    AuditEntry,
    canonical_body,
    canonical_bytes,
    decode_entry,
    encode,
    leaf_bytes,
)
from store.errors import InvalidEntry


def test_known_bytes() -> None:
    entry = AuditEntry(7, 1_790_000_000_123, "session.granted", {"z": 1, "a": ["é", None, True]})
    assert (
        canonical_bytes(entry)
        == (
            '{"b":{"a":["é",null,true],"z":1},"i":7,"k":"session.granted","t":1790000000123,"v":1}'
        ).encode()
    )


def test_key_order_does_not_change_the_bytes() -> None:
    one = AuditEntry(0, 1, "lock.unlocked", {"door": "front", "by": "x"})
    two = AuditEntry(0, 1, "lock.unlocked", {"by": "x", "door": "front"})
    assert canonical_bytes(one) == canonical_bytes(two)


def test_leaf_bytes_are_canonical_or_sealed() -> None:
    entry = AuditEntry(0, 1, "clip.recorded", {"sha256": "00"})
    assert leaf_bytes(entry) == canonical_bytes(entry)
    assert leaf_bytes(entry, seal=lambda data: b"sealed:" + data) == b"sealed:" + canonical_bytes(
        entry
    )


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("session.granted", {"ratio": 0.5}),
        ("session.granted", {"n": 2**53}),
        ("session.granted", {"bad key": 1}),
        ("session.granted", {"s": "\ud800"}),
        ("session.granted", {"s": b"bytes"}),
        ("Session.Granted", {}),
        ("granted", {}),
        ("session.granted", {"x": "y" * 70_000}),
    ],
)
def test_values_without_a_canonical_form_are_refused(kind: str, body: dict[str, object]) -> None:
    with pytest.raises(InvalidEntry):
        canonical_bytes(AuditEntry(0, 1, kind, body))  # type: ignore[arg-type]


def test_deep_nesting_is_refused() -> None:
    body: dict[str, object] = {}
    inner = body
    for _ in range(20):
        inner["a"] = {}
        inner = inner["a"]  # type: ignore[assignment]
    with pytest.raises(InvalidEntry, match="deeper"):
        canonical_bytes(AuditEntry(0, 1, "a.b", body))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":{},"i":0,"k":"a.b","t":1,"v":1} ',
        b'{"i":0,"b":{},"k":"a.b","t":1,"v":1}',
        b'{"b":{},"i":0,"k":"a.b","t":1.0,"v":1}',
        b'{"b":{},"i":0,"k":"a.b","t":1,"v":1,"v":1}',
        b'{"b":{},"i":0,"k":"a.b","t":1,"v":2}',
        b'{"b":{"x":"\\u0041"},"i":0,"k":"a.b","t":1,"v":1}',
        b"\xff",
        b"[]",
    ],
)
def test_non_canonical_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidEntry):
        decode_entry(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(deadline=None)
@given(
    index=st.integers(0, 2**53 - 1),
    time_ms=st.integers(0, 2**53 - 1),
    body=st.dictionaries(st.from_regex(r"[A-Za-z0-9_.-]{1,8}", fullmatch=True), json_values),
)
def test_round_trip_and_agreement_with_plain_json(
    index: int, time_ms: int, body: dict[str, object]
) -> None:
    entry = AuditEntry(index, time_ms, "event.happened", body)  # type: ignore[arg-type]
    data = canonical_bytes(entry)
    assert decode_entry(data) == entry
    assert json.loads(data) == {"b": body, "i": index, "k": "event.happened", "t": time_ms, "v": 1}
    # encode() puts the bytes together around the body's: exactly the whole object's dump.
    whole = json.dumps(
        {"b": body, "i": index, "k": "event.happened", "t": time_ms, "v": 1},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert encode(entry) == (canonical_body(body), whole)  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.binary(max_size=64))
def test_garbage_raises_only_invalid_entry(data: bytes) -> None:
    with contextlib.suppress(InvalidEntry):
        decode_entry(data)
