"""Checkpoint signatures: verifiable with the public key alone; any change breaks them."""

from __future__ import annotations

import dataclasses
import os

import pytest
from nacl.signing import SigningKey

from store.checkpoint import Checkpoint, CheckpointSigner, Format, SignedCheckpoint
from store.errors import InvalidEntry


def test_message_format() -> None:
    cp = Checkpoint("threshold.example/gw/gw-1", 5, bytes(32), 1_790_000_000_000)
    assert cp.message() == (
        b"threshold.example/gw/gw-1\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    )


def test_legacy_message_format_still_verifies() -> None:
    cp = Checkpoint("gw-1", 5, bytes(32), 1_790_000_000_000, Format.LEGACY)
    assert cp.message() == (
        b"threshold-checkpoint/v1\ngw-1\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        b"1790000000000\n"
    )
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-1")
    legacy = signer.sign_legacy(5, bytes(32), 1_790_000_000_000)
    assert legacy.verify(signer.public_key)
    assert legacy.checkpoint.gateway_id == "gw-1"
    assert not SignedCheckpoint(
        dataclasses.replace(legacy.checkpoint, time_ms=1), legacy.signature
    ).verify(signer.public_key)


def test_sign_and_verify_with_public_key_only() -> None:
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-1")
    signed = signer.sign(10, os.urandom(32), 1234)
    assert signed.verify(signer.public_key)
    assert not signed.verify(bytes(SigningKey.generate().verify_key))


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "threshold.example/gw/gw-2"},
        {"tree_size": 11},
        {"root_hash": bytes(32)},
        {"format": Format.LEGACY},
    ],
)
def test_any_changed_field_fails(change: dict[str, object]) -> None:
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-1")
    signed = signer.sign(10, os.urandom(32), 1234)
    forged = SignedCheckpoint(
        dataclasses.replace(signed.checkpoint, **change),  # type: ignore[arg-type]
        signed.signature,
        signed.key_id,
    )
    assert not forged.verify(signer.public_key)


def test_time_is_not_signed_in_a_note() -> None:
    """The note format leaves time to the cosignatures (docs/audit-log.md): the gateway's own
    clock reading is display only, and changing it does not touch the signature."""
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-1")
    signed = signer.sign(10, os.urandom(32), 1234)
    moved = SignedCheckpoint(
        dataclasses.replace(signed.checkpoint, time_ms=99), signed.signature, signed.key_id
    )
    assert moved.verify(signer.public_key)
    assert moved.note() == signed.note()


def test_a_wrong_key_id_fails() -> None:
    signer = CheckpointSigner.from_secret(os.urandom(32), "gw-1")
    signed = signer.sign(10, os.urandom(32), 1234)
    assert not SignedCheckpoint(signed.checkpoint, signed.signature, bytes(4)).verify(
        signer.public_key
    )


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
