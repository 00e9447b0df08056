"""The relay's checks on uploads and receipts, pure, over in-memory trees."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from cloud import wire
from cloud.witness import (
    Accepted,
    FetchedNodes,
    Finding,
    NodeMissing,
    Refused,
    Witnessed,
    check_batch,
    check_receipt,
    compact_range,
    nodes_for_batch,
    nodes_for_receipt,
)
from store import merkle
from store.checkpoint import CheckpointSigner, SignedCheckpoint
from store.merkle import MemoryTree

GW = "gw-w"
KEY = SigningKey(os.urandom(32))
SIGNER = CheckpointSigner(KEY, GW)
PUBLIC = bytes(KEY.verify_key)


def leaves(n: int, tag: bytes = b"e") -> list[bytes]:
    return [tag + str(i).encode() for i in range(n)]


def checkpoint(log: list[bytes], size: int | None = None) -> tuple[SignedCheckpoint, MemoryTree]:
    tree = MemoryTree([merkle.leaf_hash(x) for x in log])
    size = len(log) if size is None else size
    return SIGNER.sign(size, merkle.root_at(tree, size), 1000 + size), tree


def batch(log: list[bytes], start: int, end: int, cp_size: int | None = None) -> wire.UploadBatch:
    cp, tree = checkpoint(log, cp_size)
    proof = merkle.consistency_proof(tree, end, cp.checkpoint.tree_size)
    return wire.UploadBatch(GW, start, tuple(log[start:end]), cp, tuple(proof))


class Held:
    """A relay's held tree, grown by applying accepted verdicts."""

    def __init__(self) -> None:
        self.tree = MemoryTree()
        self.witnessed: list[Witnessed] = []

    def offer(self, b: wire.UploadBatch) -> Accepted | Refused:
        verdict = check_batch(b, GW, PUBLIC, self.tree, self.tree.size, self.witnessed)
        if isinstance(verdict, Accepted):
            for _, _, digest in verdict.leaves:
                self.tree.append(digest)
            cp = verdict.checkpoint.checkpoint
            self.witnessed.append(Witnessed(cp.tree_size, cp.root_hash, "gateway"))
            assert self.tree.size == verdict.new_size
        return verdict


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.lists(st.integers(1, 80), min_size=1, max_size=8))
def test_any_batching_reaches_the_signed_root(total: int, cuts: list[int]) -> None:
    log = leaves(total)
    held = Held()
    start, turn = 0, 0
    while start < total:
        cut = cuts[turn % len(cuts)]
        turn += 1
        end = min(total, start + cut)
        assert isinstance(held.offer(batch(log, start, end)), Accepted)
        start = end
    assert held.tree.root() == merkle.MemoryTree([merkle.leaf_hash(x) for x in log]).root()


def test_replay_is_a_noop_and_overlap_is_fine() -> None:
    log = leaves(40)
    held = Held()
    assert isinstance(held.offer(batch(log, 0, 20)), Accepted)
    again = held.offer(batch(log, 0, 20))
    assert isinstance(again, Accepted)
    assert again.leaves == []
    assert again.new_size == 20
    overlap = held.offer(batch(log, 10, 40))
    assert isinstance(overlap, Accepted)
    assert len(overlap.leaves) == 20


def test_gap_rewrite_bad_signature_and_inconsistent_proof() -> None:
    log = leaves(40)
    held = Held()
    held.offer(batch(log, 0, 20))
    gap = held.offer(batch(log, 25, 40))
    assert isinstance(gap, Refused)
    assert gap.finding is Finding.GAP
    assert not gap.finding.is_alarm
    forged = list(log)
    forged[5] = b"forged"
    rewrite = held.offer(batch(forged, 0, 30))
    assert isinstance(rewrite, Refused)
    assert rewrite.finding is Finding.REWRITE
    other = CheckpointSigner(SigningKey(os.urandom(32)), GW)
    good = batch(log, 20, 40)
    cp = good.checkpoint.checkpoint
    bad_sig = wire.UploadBatch(
        GW, 20, good.entries, other.sign(cp.tree_size, cp.root_hash, cp.time_ms), good.proof
    )
    assert held.offer(bad_sig) == Refused(
        Finding.BAD_SIGNATURE, "checkpoint of size 40 is not signed"
    )
    wrong_proof = wire.UploadBatch(GW, 20, good.entries[:-1], good.checkpoint, good.proof)
    verdict = held.offer(wrong_proof)
    assert isinstance(verdict, Refused)
    assert verdict.finding is Finding.INCONSISTENT
    behind = wire.UploadBatch(GW, 20, good.entries, batch(log, 0, 30, 30).checkpoint, ())
    assert isinstance(held.offer(behind), Refused)
    assert held.tree.size == 20


def test_truncated_or_forked_log_after_a_witness_is_an_equivocation() -> None:
    log = leaves(100)
    held = Held()
    held.offer(batch(log, 0, 50, 50))
    receipt_cp, _ = checkpoint(log[:90])
    held.witnessed.append(Witnessed(90, receipt_cp.checkpoint.root_hash, "receipt"))
    truncated = leaves(70, b"t")
    truncated[:50] = log[:50]
    verdict = held.offer(batch(truncated, 50, 70))
    assert isinstance(verdict, Refused)
    assert verdict.finding is Finding.EQUIVOCATION
    assert "truncated" in verdict.detail
    forked = list(log)
    forked[60] = b"fork"
    verdict = held.offer(batch(forked, 50, 100))
    assert isinstance(verdict, Refused)
    assert verdict.finding is Finding.EQUIVOCATION
    assert "rewritten" in verdict.detail
    assert isinstance(held.offer(batch(log, 50, 100)), Accepted)


def test_receipts_are_checked_against_held_leaves() -> None:
    log = leaves(64)
    held = Held()
    held.offer(batch(log, 0, 64))
    cp, tree = checkpoint(log[:32])
    entries = ((7, log[7], tuple(merkle.inclusion_proof(tree, 7, 32))),)
    assert check_receipt(wire.WireReceipt(GW, cp, entries), PUBLIC, held.tree, 64, []) is None
    other = leaves(32, b"x")
    cp2, tree2 = checkpoint(other)
    entries2 = ((7, other[7], tuple(merkle.inclusion_proof(tree2, 7, 32))),)
    refused = check_receipt(wire.WireReceipt(GW, cp2, entries2), PUBLIC, held.tree, 64, [])
    assert isinstance(refused, Refused)
    assert refused.finding is Finding.EQUIVOCATION
    bad_proof = ((8, log[7], entries[0][2]),)
    refused = check_receipt(wire.WireReceipt(GW, cp, bad_proof), PUBLIC, held.tree, 64, [])
    assert isinstance(refused, Refused)
    assert refused.finding is Finding.MALFORMED


def test_wire_batch_round_trip_and_garbage() -> None:
    b = batch(leaves(30), 5, 30)
    assert wire.decode_batch(wire.encode_batch(b)) == b
    encoded = wire.encode_batch(b)
    for broken in (b"", b"XXXX" + encoded[4:], encoded[:-1], encoded + b"\x00", encoded[:50]):
        with pytest.raises(wire.MalformedMessage):
            wire.decode_batch(broken)


@given(st.binary(max_size=300))
def test_garbage_batches_raise_only_malformed(data: bytes) -> None:
    with pytest.raises(wire.MalformedMessage):
        wire.decode_batch(wire.MAGIC + data)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 200),
    st.integers(0, 200),
    st.integers(1, 120),
    st.integers(0, 60),
    st.lists(st.integers(1, 400), max_size=4),
    st.booleans(),
)
def test_the_predicted_nodes_are_all_a_batch_check_reads(
    held_size: int, start: int, count: int, ahead: int, seen_sizes: list[int], fork: bool
) -> None:
    """A storage that fetches only ``nodes_for_batch`` gets the verdict the whole tree gives,
    for honest, replayed, gapped, truncated and forked batches alike."""
    log = leaves(400)
    held_tree = MemoryTree([merkle.leaf_hash(x) for x in log[:held_size]])
    start = min(start, 399)
    end = min(start + count, 400)
    source = list(log)
    if fork:
        source[start] = b"forked"
    b = batch(source, start, end, min(400, end + ahead))
    whole = MemoryTree([merkle.leaf_hash(x) for x in log])
    seen = [Witnessed(size, merkle.root_at(whole, size), "receipt") for size in seen_sizes]
    want = nodes_for_batch(b, held_size, seen)
    fetched = FetchedNodes({n: held_tree.node(*n) for n in want})
    expected = check_batch(b, GW, PUBLIC, held_tree, held_size, seen)
    assert check_batch(b, GW, PUBLIC, fetched, held_size, seen) == expected
    receipt_cp, _ = checkpoint(log[: max(1, start)])
    receipt = wire.WireReceipt(GW, receipt_cp, ())
    fetched = FetchedNodes({n: held_tree.node(*n) for n in nodes_for_receipt(receipt, held_size)})
    assert check_receipt(receipt, PUBLIC, fetched, held_size, []) == check_receipt(
        receipt, PUBLIC, held_tree, held_size, []
    )


def test_a_node_not_fetched_is_named() -> None:
    with pytest.raises(NodeMissing) as missing:
        FetchedNodes().node(3, 5)
    assert (missing.value.level, missing.value.index) == (3, 5)
    assert compact_range(13) == [(3, 0), (2, 2), (0, 12)]
