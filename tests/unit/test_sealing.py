"""Sealing to the owner's Ed25519 key: randomised, opened only by the owner."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from store.entry import AuditEntry, canonical_bytes, leaf_bytes
from store.errors import InvalidEntry
from store.sealing import OwnerSealer, open_sealed


def test_seal_and_open() -> None:
    owner = SigningKey.generate()
    seal = OwnerSealer(bytes(owner.verify_key))
    entry = AuditEntry(3, 1000, "lock.unlocked", {"door": "front"})
    first, second = leaf_bytes(entry, seal), leaf_bytes(entry, seal)
    assert first != second  # randomised: the store must seal once and keep the bytes
    assert open_sealed(owner, first) == canonical_bytes(entry)
    with pytest.raises(InvalidEntry):
        open_sealed(SigningKey.generate(), first)
    with pytest.raises(InvalidEntry):
        OwnerSealer(b"short")
    with pytest.raises(InvalidEntry, match="not a valid"):
        OwnerSealer(bytes(32))
