"""The Merkle tree against RFC 9162's recursive definition, and its proofs against tampering."""

from __future__ import annotations

import hashlib

import pytest

from store import merkle
from store.merkle import MemoryTree, MerkleFrontier


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 §2.1.1 writes it, recursion and all."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_root(leaves[:k])]


def reference_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [reference_root(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*reference_subproof(m, leaves[:k], whole), reference_root(leaves[k:])]
    return [*reference_subproof(m - k, leaves[k:], False), reference_root(leaves[:k])]


LEAVES = [f"leaf {i}".encode() for i in range(301)]


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    return MemoryTree([merkle.leaf_hash(leaf) for leaf in LEAVES])


def test_roots_match_reference_for_sizes_0_to_300(tree: MemoryTree) -> None:
    frontier = MerkleFrontier()
    assert frontier.root() == reference_root([])
    for size in range(301):
        expected = reference_root(LEAVES[:size])
        assert merkle.root_at(tree, size) == expected, size
        assert frontier.root() == expected, size
        frontier.append(merkle.leaf_hash(LEAVES[size]))


def test_frontier_reloads_from_stored_nodes(tree: MemoryTree) -> None:
    for size in (0, 1, 2, 3, 7, 8, 255, 256, 300):
        loaded = MerkleFrontier.load(tree, size)
        assert loaded.root() == reference_root(LEAVES[:size])


def test_every_inclusion_proof_matches_reference_and_verifies(tree: MemoryTree) -> None:
    for size in range(1, 130):
        root = merkle.root_at(tree, size)
        for index in range(size):
            proof = merkle.inclusion_proof(tree, index, size)
            assert proof == reference_path(index, LEAVES[:size])
            leaf = merkle.leaf_hash(LEAVES[index])
            assert merkle.verify_inclusion(leaf, index, size, proof, root)


def test_inclusion_proofs_at_larger_sizes(tree: MemoryTree) -> None:
    for size in (255, 256, 257, 300, 301):
        root = merkle.root_at(tree, size)
        for index in range(0, size, 7):
            proof = merkle.inclusion_proof(tree, index, size)
            assert merkle.verify_inclusion(
                merkle.leaf_hash(LEAVES[index]), index, size, proof, root
            )


def test_every_consistency_proof_matches_reference_and_verifies(tree: MemoryTree) -> None:
    for new in range(0, 100):
        new_root = merkle.root_at(tree, new)
        for old in range(0, new + 1):
            proof = merkle.consistency_proof(tree, old, new)
            if 0 < old < new:
                assert proof == reference_subproof(old, LEAVES[:new], True)
            old_root = merkle.root_at(tree, old)
            assert merkle.verify_consistency(old, new, old_root, new_root, proof), (old, new)


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def test_tampered_inclusion_proofs_fail(tree: MemoryTree) -> None:
    size = 77
    root = merkle.root_at(tree, size)
    for index in range(size):
        leaf = merkle.leaf_hash(LEAVES[index])
        proof = merkle.inclusion_proof(tree, index, size)
        for position in range(len(proof)):
            bad = list(proof)
            bad[position] = flip(bad[position])
            assert not merkle.verify_inclusion(leaf, index, size, bad, root)
        assert not merkle.verify_inclusion(flip(leaf), index, size, proof, root)
        assert not merkle.verify_inclusion(leaf, index, size, proof, flip(root))
        assert not merkle.verify_inclusion(leaf, index, size, [*proof, root], root)
        if proof:
            assert not merkle.verify_inclusion(leaf, index, size, proof[:-1], root)
        assert not merkle.verify_inclusion(leaf, (index + 1) % size, size, proof, root) or (
            size == 1
        )
        assert not merkle.verify_inclusion(leaf, size, size, proof, root)


def test_tampered_consistency_proofs_fail(tree: MemoryTree) -> None:
    for new in (5, 8, 13, 64, 100):
        new_root = merkle.root_at(tree, new)
        for old in range(1, new):
            old_root = merkle.root_at(tree, old)
            proof = merkle.consistency_proof(tree, old, new)
            for position in range(len(proof)):
                bad = list(proof)
                bad[position] = flip(bad[position])
                assert not merkle.verify_consistency(old, new, old_root, new_root, bad)
            assert not merkle.verify_consistency(old, new, flip(old_root), new_root, proof)
            assert not merkle.verify_consistency(old, new, old_root, flip(new_root), proof)
            assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])
            assert not merkle.verify_consistency(old, new, old_root, new_root, [])


def test_proof_requests_out_of_range_are_refused(tree: MemoryTree) -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_proof(tree, 5, 5)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(tree, 6, 5)
    assert not merkle.verify_consistency(6, 5, b"x" * 32, b"y" * 32, [])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, merkle.root_at(tree, 5), [])
