"""Checkpoint signatures: verifiable with the public key alone; any change breaks them."""

from __future__ import annotations

import dataclasses
import os

import pytest
from nacl.signing import SigningKey

from store.checkpoint import Checkpoint, CheckpointSigner, SignedCheckpoint
from store.errors import InvalidEntry


def test_message_format() -> None:
    cp = Checkpoint("gw-1", 5, bytes(32), 1_790_000_000_000)
    assert cp.message() == (
        b"threshold-checkpoint/v1\ngw-1\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        b"1790000000000\n"
    )


def test_sign_and_verify_with_public_key_only() -> None:
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-1")
    signed = signer.sign(10, os.urandom(32), 1234)
    assert signed.verify(signer.public_key)
    assert not signed.verify(bytes(SigningKey.generate().verify_key))


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "gw-2"},
        {"tree_size": 11},
        {"root_hash": bytes(32)},
        {"time_ms": 1235},
    ],
)
def test_any_changed_field_fails(change: dict[str, object]) -> None:
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-1")
    signed = signer.sign(10, os.urandom(32), 1234)
    forged = SignedCheckpoint(dataclasses.replace(signed.checkpoint, **change), signed.signature)  # type: ignore[arg-type]
    assert not forged.verify(signer.public_key)


def test_64_byte_secret_and_mismatch() -> None:
    key = SigningKey.generate()
    full = bytes(key) + bytes(key.verify_key)
    assert CheckpointSigner.from_secret(full, "gw").public_key == bytes(key.verify_key)
    with pytest.raises(InvalidEntry, match="does not match"):
        CheckpointSigner.from_secret(bytes(key) + bytes(32), "gw")
    with pytest.raises(InvalidEntry):
        CheckpointSigner.from_secret(bytes(31), "gw")
    with pytest.raises(InvalidEntry):
        CheckpointSigner.from_secret(bytes(32), "gw with space")


def test_malformed_signature_or_key_is_false_not_an_exception() -> None:
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-1")
    signed = signer.sign(1, os.urandom(32), 1)
    assert not SignedCheckpoint(signed.checkpoint, signed.signature[:10]).verify(signer.public_key)
    assert not signed.verify(b"short")
