"""Leaf format 3: a visit's entries carry visit tags that only the visitor's proof opens,
and are otherwise checked exactly as format 2 (the readable copy against the field tags;
the owner opens the seal). Every other sealed entry is format 3 too, with a random tag."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from nacl.signing import SigningKey

from gateway.clients.owner_log import open_leaf
from gateway.trust.seal import Sealer, Unsealer
from store import commitment
from store.verify import verify_log
from tests.support.store import new_signer, open_store


async def test_visit_entries_are_format_3_verify_and_open(tmp_path: Path) -> None:
    db = tmp_path / "threshold.db"
    signer = new_signer()
    owner = SigningKey.generate()
    store = await open_store(db, signer, checkpoint_every=4, seal=Sealer(bytes(owner.verify_key)))
    proof = os.urandom(64)
    visit = commitment.visit_secret(proof)
    try:
        await store.append("gateway.started", {"n": 0})
        for n in range(3):
            await store.transact(lambda tx, n=n: tx.append("session.open", {"n": n}, visit=visit))
        await store.append("session.denied", {"n": 9})
        await store.checkpoint()
        shown = await store.checked_entries(0, 10)
    finally:
        await store.close()
    assert all(c.verified for c in shown)
    leaves = [c.stored.leaf_bytes for c in shown]
    forms = [commitment.leaf_form(leaf) for leaf in leaves]
    # Every sealed leaf is format 3 and of one length (docs/privacy.md): the relay cannot
    # pick a visit's entries out by their first byte or their size.
    assert forms == [commitment.LeafForm.SEALED_V3] * 5
    assert len({len(leaf) for leaf in leaves}) == 1
    tags = [commitment.leaf_visit_tag(leaf) for leaf in leaves[1:4]]
    assert tags == [commitment.visit_tag(visit, i) for i in (1, 2, 3)]
    assert len(set(tags)) == 3  # a different tag per entry: nothing links them without v
    # The entries outside the visit carry random tags, which v does not match.
    for i in (0, 4):
        other = commitment.leaf_visit_tag(leaves[i])
        assert other is not None
        assert other != commitment.visit_tag(visit, i)
    unseal = Unsealer(bytes(owner))
    assert open_leaf(unseal, leaves[2]).body == {"n": 1}

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        report = verify_log(conn, signer.public_key)
    finally:
        conn.close()
    assert report.ok, report

    # The readable copy of a format-3 row is checked like format 2's: edited, it is named.
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER audit_entry_no_update")
    conn.execute("UPDATE audit_entry SET kind = 'session.closed' WHERE idx = 2")
    conn.commit()
    try:
        report = verify_log(conn, signer.public_key)
    finally:
        conn.close()
    assert not report.ok
    assert report.to_json()["first_bad_index"] == 2
    assert report.to_json()["field"] == "kind"
