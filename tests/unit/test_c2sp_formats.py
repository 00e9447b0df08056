"""The C2SP formats (signed-note, tlog-checkpoint, tlog-cosignature) against the specs' own
examples and against a second implementation written here from the spec text alone.

The second implementation (``_Independent``) uses ``cryptography``'s Ed25519, not PyNaCl,
and shares no code with ``store.note``/``store.checkpoint``/``store.cosignature``: each
side signs, the other verifies. Spec texts: C2SP/C2SP signed-note.md, tlog-checkpoint.md,
tlog-cosignature.md.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.signing import SigningKey

from store import cosignature, note
from store.checkpoint import CheckpointSigner, SignedCheckpoint, parse_body

# signed-note.md, "Verifier keys", "Example".
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYj"
    "OBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# tlog-checkpoint.md and tlog-cosignature.md, the checkpoint with a witness cosignature.
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


class _Independent:
    """signed-note, tlog-checkpoint and tlog-cosignature, from the spec text only."""

    @staticmethod
    def raw(public: Ed25519PublicKey) -> bytes:
        return public.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @staticmethod
    def key_id(name: str, kind: int, public: bytes) -> bytes:
        return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]

    @classmethod
    def checkpoint(cls, key: Ed25519PrivateKey, origin: str, size: int, root: bytes) -> str:
        text = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
        blob = cls.key_id(origin, 1, cls.raw(key.public_key())) + key.sign(text.encode())
        return f"{text}\n\u2014 {origin} {base64.b64encode(blob).decode()}\n"

    @classmethod
    def verify(cls, signed: str, name: str, public: bytes, kind: int = 1) -> bool:
        """True when a line from (name, key ID) verifies; cosignatures carry their time."""
        text, _, sigs = signed.rpartition("\n\n")
        text += "\n"
        wanted = cls.key_id(name, kind, public)
        for line in sigs.rstrip("\n").split("\n"):
            line_name, blob_b64 = line.removeprefix("\u2014 ").split(" ")
            blob = base64.b64decode(blob_b64)
            if line_name != name or blob[:4] != wanted:
                continue
            message, sig = text.encode(), blob[4:]
            if kind == 4:
                (stamp,) = struct.unpack(">Q", blob[4:12])
                message = f"cosignature/v1\ntime {stamp}\n".encode() + message
                sig = blob[12:]
            Ed25519PublicKey.from_public_bytes(public).verify(sig, message)
            return True
        return False

    @classmethod
    def cosign(cls, key: Ed25519PrivateKey, name: str, text: str, stamp: int) -> str:
        message = f"cosignature/v1\ntime {stamp}\n{text}".encode()
        blob = cls.key_id(name, 4, cls.raw(key.public_key())) + struct.pack(">Q", stamp)
        blob += key.sign(message)
        return f"\u2014 {name} {base64.b64encode(blob).decode()}\n"


def test_the_spec_vkey_verifies_the_spec_note() -> None:
    verifier = note.parse_vkey(SPEC_VKEY)
    assert verifier.vkey() == SPEC_VKEY
    opened = note.open_note(SPEC_NOTE, [verifier])
    assert opened.text == "This is an example message.\n"
    assert opened.encode().decode() == SPEC_NOTE
    tampered = SPEC_NOTE.replace("example message", "example massage")
    with pytest.raises(note.MalformedNote, match="does not verify"):
        note.open_note(tampered, [verifier])


def test_the_spec_checkpoint_parses_and_an_unknown_key_is_not_trusted() -> None:
    parsed = note.parse(SPEC_CHECKPOINT)
    body = parse_body(parsed.text)
    assert (body.origin, body.tree_size, body.extensions) == (
        "example.com/behind-the-sofa",
        20852163,
        (),
    )
    assert [s.name for s in parsed.signatures] == [
        "example.com/behind-the-sofa",
        "witness.example.com/w1",
    ]
    someone = note.ed25519_verifier("example.com/behind-the-sofa", os.urandom(32))
    with pytest.raises(note.MalformedNote, match="no signature from a trusted key"):
        note.verified(parsed, [someone])


def test_the_spec_cosignature_carries_the_spec_time() -> None:
    """tlog-cosignature.md's example message says ``time 1679315147``."""
    line = note.parse(SPEC_CHECKPOINT).signatures[1]
    assert cosignature.timestamp_of(line.signature) == 1679315147


def test_an_independent_checkpoint_verifies_here_and_ours_there() -> None:
    theirs = Ed25519PrivateKey.generate()
    public = _Independent.raw(theirs.public_key())
    root = os.urandom(32)
    text = _Independent.checkpoint(theirs, "threshold.example/gw/gw-7", 42, root)
    signed = SignedCheckpoint.from_note(text)
    assert signed.verify(public)
    assert (signed.checkpoint.tree_size, signed.checkpoint.root_hash) == (42, root)
    assert signed.note() == text

    signer = CheckpointSigner(SigningKey(os.urandom(32)), "gw-7")
    ours = signer.sign(42, root, 1).note()
    assert _Independent.verify(ours, "threshold.example/gw/gw-7", signer.public_key)
    assert not _Independent.verify(ours, "threshold.example/gw/gw-8", signer.public_key)


def test_cosignatures_both_ways() -> None:
    signer = CheckpointSigner(SigningKey(os.urandom(32)), "gw-7")
    text = signer.sign(3, os.urandom(32), 1).checkpoint.note_text()
    witness = Ed25519PrivateKey.generate()
    public = _Independent.raw(witness.public_key())
    line = _Independent.cosign(witness, "witness.example/w1", text, 1_790_000_000)
    parsed = note.parse(text + "\n" + line)
    ok = cosignature.check(
        cosignature.verifier("witness.example/w1", public), text, parsed.signatures[0]
    )
    assert ok == cosignature.Cosignature("witness.example/w1", 1_790_000_000)

    key = SigningKey(os.urandom(32))
    mine = cosignature.cosign(key, "relay.example/w", text, 1_790_000_001)
    assert _Independent.verify(
        text + "\n" + mine.line(), "relay.example/w", bytes(key.verify_key), 4
    )
    vkey = cosignature.verifier("relay.example/w", bytes(key.verify_key)).vkey()
    assert cosignature.parse_cosigner_vkey(vkey).key_id == mine.key_id
    with pytest.raises(note.MalformedNote):
        cosignature.check(
            cosignature.verifier("relay.example/w", bytes(key.verify_key)),
            text.replace("\n3\n", "\n4\n"),
            mine,
        )


@pytest.mark.parametrize(
    "bad",
    [
        "no blank line\n\u2014 a b\n",
        "text\n\n\u2014 name AAAA\n",  # a signature shorter than key ID + 1 byte
        "text\n\n- name AAAAAAA=\n",  # not an em dash
        "text\x07\n\n\u2014 name AAAAAAA=\n",  # a control character
        "text\n\n\u2014 na+me AAAAAAA=\n",  # plus in a key name
        "text\n\n\u2014 name AAAAAAA=",  # no final newline
    ],
)
def test_malformed_notes_are_refused(bad: str) -> None:
    with pytest.raises(note.MalformedNote):
        note.parse(bad)


@pytest.mark.parametrize(
    "text",
    [
        "origin\n020\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # leading zero
        "origin\n20\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # unpadded base64
        "origin\n20\n\n",  # empty root line
        "origin\n20\n",  # two lines
        "origin\n20\nAAAA\n",  # not 32 bytes
    ],
)
def test_malformed_checkpoint_bodies_are_refused(text: str) -> None:
    with pytest.raises(note.MalformedNote):
        parse_body(text)


def test_the_json_form_round_trips_both_formats_and_refuses_disagreement() -> None:
    from cloud.wire import MalformedMessage, checkpoint_from_json

    signer = CheckpointSigner(SigningKey(os.urandom(32)), "gw-7")
    signed = signer.sign(3, os.urandom(32), 17)
    assert checkpoint_from_json(signed.to_json()) == signed
    legacy = signer.sign_legacy(3, os.urandom(32), 17)
    back = checkpoint_from_json(legacy.to_json())
    assert back == legacy
    assert back.verify(signer.public_key)
    lying = {**signed.to_json(), "tree_size": 4}
    with pytest.raises(MalformedMessage, match="disagrees"):
        checkpoint_from_json(lying)


def test_the_spec_add_checkpoint_request_parses() -> None:
    """tlog-witness.md's example request body (its checkpoint with the log's signature)."""
    from cloud.tlog_witness import parse_request

    body = (
        "old 20852014\n"
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
        "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
        "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
        "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
        "\n" + SPEC_CHECKPOINT
    )
    request = parse_request(body.encode())
    assert request.old_size == 20852014
    assert len(request.proof) == 4
    assert parse_body(note.parse(request.checkpoint).text).tree_size == 20852163


def test_a_vkey_whose_base64_holds_a_plus() -> None:
    for _ in range(64):
        key = SigningKey(os.urandom(32))
        vkey = note.ed25519_verifier("example.com/log", bytes(key.verify_key)).vkey()
        if "+" in vkey.split("+", 2)[2]:
            break
    else:
        pytest.fail("no key with a plus in its base64 in 64 tries")
    assert note.parse_vkey(vkey).public_key == bytes(key.verify_key)
