"""Sealing to the owner: padding classes hide the entry's size, only the owner opens it."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from gateway.trust.seal import (
    SEAL_OVERHEAD,
    SMALLEST_CLASS,
    Sealer,
    SealError,
    Unsealer,
    pad,
    size_class,
    unpad,
)
from store.entry import AuditEntry, canonical_bytes


@given(st.binary(max_size=5000))
def test_pad_round_trips_and_lands_on_a_class(data: bytes) -> None:
    padded = pad(data)
    assert len(padded) == size_class(len(data))
    assert len(padded) >= SMALLEST_CLASS
    assert len(padded) & (len(padded) - 1) == 0
    assert unpad(padded) == data


def test_a_delivery_and_a_cleaner_seal_to_the_same_size() -> None:
    owner = SigningKey(os.urandom(32))
    seal = Sealer(bytes(owner.verify_key))
    delivery = AuditEntry(
        7,
        1_790_000_000_000,
        "session.granted",
        {"holder": "Dana Courier", "order": "A-1", "purpose": "delivery"},
    )
    cleaner = AuditEntry(
        8,
        1_790_000_000_001,
        "session.closed",
        {
            "holder": "Chris the cleaner from Sparkle & Co",
            "purpose": "cleaning",
            "door": "back",
            "note": "weekly",
        },
    )
    a, b = seal(canonical_bytes(delivery)), seal(canonical_bytes(cleaner))
    assert len(a) == len(b) == SMALLEST_CLASS + SEAL_OVERHEAD
    assert b"Dana" not in a
    assert b"delivery" not in a


def test_only_the_owner_opens_and_tampering_is_detected() -> None:
    owner, other = SigningKey(os.urandom(32)), SigningKey(os.urandom(32))
    sealed = Sealer(bytes(owner.verify_key)).seal(b'{"x":1}')
    assert Unsealer(bytes(owner)).open(sealed) == b'{"x":1}'
    full = bytes(owner) + bytes(owner.verify_key)
    assert Unsealer(full).open(sealed) == b'{"x":1}'
    with pytest.raises(SealError):
        Unsealer(bytes(other)).open(sealed)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(SealError):
        Unsealer(bytes(owner)).open(bytes(flipped))
    with pytest.raises(SealError):
        Unsealer(bytes(owner)).open(sealed[:40])


def test_bad_keys_and_bad_padding_are_typed_errors() -> None:
    with pytest.raises(SealError):
        Sealer(b"short")
    with pytest.raises(SealError):
        unpad(b"\x00" * 511)
    with pytest.raises(SealError):
        unpad(b"\x00\x00\x00\x05abcde" + b"\x01" + b"\x00" * 502)
    with pytest.raises(SealError):
        size_class(200 * 1024)
