"""The relay as a standard C2SP witness (tlog-witness ``add-checkpoint``), over real HTTP on
loopback: a consistent checkpoint is cosigned, every refusal has the spec's status, and one
relay witnesses two logs (a registered gateway's and a foreign log added by vkey) apart.

Spec text: C2SP/C2SP tlog-witness.md, "add-checkpoint"; the cosignatures are checked with
the relay's published vkey only (tlog-cosignature, type 0x04)."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from nacl.signing import SigningKey

from cloud.tlog_witness import encode_request
from store import cosignature, merkle, note
from store.checkpoint import CheckpointSigner, SignedCheckpoint
from tests.support.cloud import GATEWAY_ID, new_parties
from tests.support.relay_attack import RawReply, raw_request, start_relay_with
from tests.support.relay_backend import RelayBackend

ADD = "/v1/witness/add-checkpoint"
#: Both relay storage backends (tests/conftest.py's relay_backend): SQLite and PostgreSQL.


def _tree(count: int, tag: bytes = b"") -> merkle.MemoryTree:
    return merkle.MemoryTree([merkle.leaf_hash(tag + b"%d" % i) for i in range(count)])


def _note(signer: CheckpointSigner, tree: merkle.MemoryTree, size: int) -> str:
    return signer.sign(size, merkle.root_at(tree, size), 0).note()


async def _add(port: int, old: int, proof: list[bytes], checkpoint: str) -> RawReply:
    return await raw_request(port, "POST", ADD, body=encode_request(old, proof, checkpoint))


def _cosigned_by(reply: RawReply, vkey: str, checkpoint: str) -> cosignature.Cosignature:
    assert reply.status == 200, reply.body
    verifier = cosignature.parse_cosigner_vkey(vkey)
    text = note.parse(checkpoint).text
    lines = reply.body.decode()
    assert lines.endswith("\n")
    assert lines.startswith("\u2014 ")
    signed = note.parse(checkpoint + lines)  # the spec: append the lines to the checkpoint
    return cosignature.check(verifier, text, signed.signatures[-1])


async def test_a_gateway_log_is_cosigned_and_every_refusal_has_the_spec_status(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, port = await start_relay_with(tmp_path / "relay", parties, backend=relay_backend)
    try:
        info = (await raw_request(port, "GET", "/v1/witness")).json
        vkey = info["vkey"]
        gateway = CheckpointSigner(parties.gateway, GATEWAY_ID)
        tree = _tree(9)

        first = _note(gateway, tree, 5)
        stamp = _cosigned_by(await _add(port, 0, [], first), vkey, first)
        assert stamp.timestamp > 1_700_000_000

        second = _note(gateway, tree, 9)
        proof = merkle.consistency_proof(tree, 5, 9)
        _cosigned_by(await _add(port, 5, proof, second), vkey, second)

        # A stale old size: 409 with the witness's size as text/x.tlog.size.
        stale = await _add(port, 5, proof, second)
        assert stale.status == 409
        assert stale.headers["content-type"].startswith("text/x.tlog.size")
        assert stale.body == b"9\n"

        # A fork: the gateway key signs a tree of 12 that does not extend the 9 cosigned.
        fork = _tree(12, b"fork")
        forked = _note(gateway, fork, 12)
        refused = await _add(port, 9, merkle.consistency_proof(fork, 9, 12), forked)
        assert refused.status == 422, refused.body
        assert refused.json["code"] == "inconsistent_checkpoint"
        # The same size with another root.
        same = await _add(port, 9, [], _note(gateway, fork, 9))
        assert same.status == 422
        # A good proof for the wrong old tree, or a truncated one, is refused alike.
        truncated = await _add(port, 9, proof[:-1], _note(gateway, _tree(12), 12))
        assert truncated.status == 422

        # The key that signs must be the gateway's: another key is 403.
        thief = CheckpointSigner(SigningKey(os.urandom(32)), GATEWAY_ID)
        forged = await _add(port, 9, [], _note(thief, tree, 9))
        assert forged.status == 403
        # The log's key with a broken signature is 403 too.
        broken = second.replace(second.split(" ")[-1], "A" * 92 + "=\n")
        assert (await _add(port, 9, [], broken)).status == 403

        # An origin nobody registered is 404; the old size above the new is 400.
        stranger = CheckpointSigner(SigningKey(os.urandom(32)), "gw-unknown")
        assert (await _add(port, 0, [], _note(stranger, tree, 3))).status == 404
        assert (await _add(port, 10, [], second)).status == 400
        assert (await raw_request(port, "POST", ADD, body=b"old 01\n\nx\n")).status == 400

        # Monitoring: the latest cosigned checkpoint, with the log's and the witness's lines.
        origin = gateway.log_origin
        digest = hashlib.sha256(origin.encode()).hexdigest()
        served = await raw_request(port, "GET", f"/v1/witness/{digest}/checkpoint")
        assert served.status == 200
        kept = served.body.decode()
        assert SignedCheckpoint.from_note(kept).verify(parties.gateway_public)
        assert SignedCheckpoint.from_note(kept).checkpoint.tree_size == 9
        cosigned = note.parse(kept)
        cosignature.check(
            cosignature.parse_cosigner_vkey(vkey), cosigned.text, cosigned.signatures[1]
        )
        missing = await raw_request(port, "GET", f"/v1/witness/{'0' * 64}/checkpoint")
        assert missing.status == 404
    finally:
        await server.stop()


async def test_two_logs_through_one_relay(tmp_path: Path, relay_backend: RelayBackend) -> None:
    parties = new_parties()
    server, port = await start_relay_with(tmp_path / "relay", parties, backend=relay_backend)
    try:
        vkey = (await raw_request(port, "GET", "/v1/witness")).json["vkey"]
        gateway = CheckpointSigner(parties.gateway, GATEWAY_ID)
        foreign_key = SigningKey(os.urandom(32))
        foreign_origin = "example.com/behind-the-sofa"
        foreign = note.ed25519_verifier(foreign_origin, bytes(foreign_key.verify_key))

        def foreign_note(tree: merkle.MemoryTree, size: int) -> str:
            root = merkle.root_at(tree, size)
            text = f"{foreign_origin}\n{size}\n{base64.b64encode(root).decode()}\n"
            line = note.sign_ed25519(foreign_key, foreign_origin, text)
            return note.Note(text, (line,)).encode().decode()

        tree = _tree(20, b"foreign")
        unknown = await _add(port, 0, [], foreign_note(tree, 4))
        assert unknown.status == 404
        await server.relay.add_witness_log(foreign.vkey())

        mine = _tree(6)
        first_foreign = foreign_note(tree, 4)
        first_mine = _note(gateway, mine, 3)
        _cosigned_by(await _add(port, 0, [], first_foreign), vkey, first_foreign)
        _cosigned_by(await _add(port, 0, [], first_mine), vkey, first_mine)
        later_foreign = foreign_note(tree, 20)
        proof = merkle.consistency_proof(tree, 4, 20)
        _cosigned_by(await _add(port, 4, proof, later_foreign), vkey, later_foreign)
        # Each origin keeps its own latest size.
        stale = await _add(port, 0, [], _note(gateway, mine, 6))
        assert stale.body == b"3\n"
        later_mine = _note(gateway, mine, 6)
        mine_proof = merkle.consistency_proof(mine, 3, 6)
        _cosigned_by(await _add(port, 3, mine_proof, later_mine), vkey, later_mine)
        # The gateway's key does not sign for the foreign origin.
        crossed = gateway.sign(20, merkle.root_at(tree, 20), 0).note()
        crossed = crossed.replace(gateway.log_origin, foreign_origin)
        assert (await _add(port, 20, [], crossed)).status == 403
    finally:
        await server.stop()


async def test_a_size_zero_checkpoint_needs_the_empty_root(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    server, port = await start_relay_with(tmp_path / "relay", parties, backend=relay_backend)
    try:
        gateway = CheckpointSigner(parties.gateway, GATEWAY_ID)
        bad = gateway.sign(0, os.urandom(32), 0).note()
        assert (await _add(port, 0, [], bad)).status == 422
        good = gateway.sign(0, hashlib.sha256(b"").digest(), 0).note()
        assert (await _add(port, 0, [], good)).status == 200
        assert (await _add(port, 0, [os.urandom(32)], _note(gateway, _tree(2), 2))).status == 422
    finally:
        await server.stop()
