"""Certificate Transparency Merkle trees: roots, inclusion and consistency proofs, verifiers.

Implements RFC 9162 §2.1 (the tree of RFC 6962 §2.1, unchanged):

* leaf hash ``SHA-256(0x00 || leaf bytes)``, interior node ``SHA-256(0x01 || left || right)``;
* the root of the empty tree is ``SHA-256("")``;
* MTH(D[n]) splits at k, the largest power of two smaller than n (§2.1.1);
* inclusion proofs PATH(m, D[n]) (§2.1.3.1) and their verifier (§2.1.3.2);
* consistency proofs PROOF(m, D[n]) (§2.1.4.1) and their verifier (§2.1.4.2).

Theory of operation. In RFC 9162's tree every left child is a *perfect* subtree (its size is a
power of two, and it starts at a multiple of its size); only the right spine can be ragged. So
any hash a proof needs is either one perfect subtree, or a ragged range [start, end) that is
the right-folded hash of the perfect subtrees the binary expansion of (end - start) cuts it
into. A store that keeps every completed perfect subtree (``PerfectNodes``) can therefore
serve any root or proof with O(log n) lookups for the perfect parts plus O(log n) per ragged
part, never touching the leaves. ``MerkleFrontier`` is the compact range (one perfect subtree
per set bit of the size) that an appender keeps to add leaves in O(log n) and to learn which
perfect nodes each append completes.

Pure: no I/O. The SQLite adapter implements ``PerfectNodes`` over its own tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || leaf)."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """k: the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class PerfectNodes(Protocol):
    """Read access to the hashes of completed perfect subtrees.

    ``node(level, index)`` is the hash of leaves [index * 2**level, (index + 1) * 2**level);
    level 0 is the leaf hashes themselves.
    """

    def node(self, level: int, index: int) -> bytes: ...


def range_hash(nodes: PerfectNodes, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range that RFC 9162's recursion can produce.

    Such a range starts at a multiple of the largest power of two not above its length, so
    it decomposes into perfect subtrees of strictly decreasing size, folded from the right.
    """
    size = end - start
    if size <= 0:
        raise ValueError("range_hash needs a non-empty range")
    parts: list[bytes] = []
    position = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            if position % (1 << level):
                raise ValueError(f"range [{start}, {end}) is not a subtree of an RFC 9162 tree")
            parts.append(nodes.node(level, position >> level))
            position += 1 << level
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = node_hash(part, result)
    return result


def root_at(nodes: PerfectNodes, size: int) -> bytes:
    """The root hash of the first ``size`` leaves."""
    if size < 0:
        raise ValueError("tree size must be >= 0")
    if size == 0:
        return EMPTY_ROOT
    return range_hash(nodes, 0, size)


def inclusion_proof(nodes: PerfectNodes, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) from RFC 9162 §2.1.3.1, leaf-side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end, m = 0, size, index
    # Walk down from the root, collecting siblings; the RFC lists them leaf-side first.
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            proof.append(range_hash(nodes, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(nodes, start, start + k))
            start, m = start + k, m - k
    proof.reverse()
    return proof


def consistency_proof(nodes: PerfectNodes, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) from RFC 9162 §2.1.4.1, leaf-side first.

    The proof between equal sizes, or from the empty tree, is empty.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, m, whole = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(range_hash(nodes, start, end))
            break
        k = _split(n)
        if m <= k:
            proof.append(range_hash(nodes, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(nodes, start, start + k))
            start, m, whole = start + k, m - k, False
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` under ``root``?"""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (new_size, new_root) an extension of (old, old_root)?"""
    if not 0 <= old_size <= new_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


@dataclass(frozen=True)
class CompletedNode:
    """A perfect subtree an append just completed (level >= 1)."""

    level: int
    index: int
    hash: bytes


class MerkleFrontier:
    """The compact range of a tree: its perfect subtrees, largest first (one per set bit)."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError("a frontier holds one hash per set bit of the tree size")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def load(cls, nodes: PerfectNodes, size: int) -> MerkleFrontier:
        """Rebuild the frontier of a stored tree from its perfect nodes."""
        hashes: list[bytes] = []
        position = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size & (1 << level):
                hashes.append(nodes.node(level, position >> level))
                position += 1 << level
        return cls(size, hashes)

    @property
    def size(self) -> int:
        return self._size

    def copy(self) -> MerkleFrontier:
        return MerkleFrontier(self._size, self._hashes)

    def append(self, leaf: bytes) -> list[CompletedNode]:
        """Add one leaf hash; return the perfect nodes (level >= 1) this completes."""
        completed: list[CompletedNode] = []
        index, level, current = self._size, 0, leaf
        while index & 1:
            current = node_hash(self._hashes.pop(), current)
            index >>= 1
            level += 1
            completed.append(CompletedNode(level, index, current))
        self._hashes.append(current)
        self._size += 1
        return completed

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for part in reversed(self._hashes[:-1]):
            result = node_hash(part, result)
        return result


def perfect_levels(leaves: bytes | bytearray) -> list[bytearray]:
    """Every level of perfect nodes over the concatenated 32-byte hashes ``leaves``: the
    leaves themselves, then each level above while it has at least one node (one hash call
    per node). For leaves starting at a multiple of 2**k, levels up to k are exactly the
    whole tree's nodes over them: how the verifier's workers build their parts."""
    level = bytearray(leaves)
    levels = [level]
    sha256 = hashlib.sha256
    pair = 2 * HASH_SIZE
    while len(level) >= pair:
        above = bytearray()
        for start in range(0, len(level) - pair + 1, pair):
            above += sha256(b"\x01" + level[start : start + pair]).digest()
        levels.append(above)
        level = above
    return levels


class MemoryTree:
    """A whole tree in memory, each level packed in one bytearray (32 bytes per node).

    For tests, for the verifier (which rebuilds the tree from the entries) and small logs:
    about 64 bytes per leaf in total.
    """

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._frontier = MerkleFrontier()
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return self._frontier.size

    def append(self, leaf: bytes) -> list[CompletedNode]:
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        self._levels[0] += leaf
        completed = self._frontier.append(leaf)
        for done in completed:
            if len(self._levels) <= done.level:
                self._levels.append(bytearray())
            self._levels[done.level] += done.hash
        return completed

    @classmethod
    def from_leaf_level(cls, leaves: bytes | bytearray) -> MemoryTree:
        """The tree over the concatenated 32-byte leaf hashes ``leaves``, built level by level
        (one hash call per node, no per-node objects): how the verifier builds a million."""
        return cls.from_levels([leaves])

    @classmethod
    def from_levels(cls, lower: Sequence[bytes | bytearray]) -> MemoryTree:
        """The tree whose lowest levels (level 0 = the leaf hashes, then each level of
        perfect nodes above) are ``lower``, concatenated 32-byte hashes; the levels above
        are built from the top one given. The levels given must be the perfect nodes of the
        leaves given (:func:`perfect_levels` of aligned chunks, joined level by level);
        only their sizes are checked here, the verifier compares every node it was given
        with the stored tree."""
        if not lower:
            raise ValueError("at least the leaf level is needed")
        size, rest = divmod(len(lower[0]), HASH_SIZE)
        if rest:
            raise ValueError("leaf hashes are 32 bytes each")
        for level, nodes in enumerate(lower):
            if len(nodes) != (size >> level) * HASH_SIZE:
                raise ValueError(f"level {level} has the wrong number of nodes")
        tree = cls()
        levels = [bytearray(nodes) for nodes in lower]
        tree._levels = levels[:-1] + perfect_levels(levels[-1])
        while len(tree._levels) > 1 and not tree._levels[-1]:
            tree._levels.pop()  # levels given above the highest node the leaves make
        tree._frontier = MerkleFrontier.load(tree, size)
        return tree

    def level_bytes(self, level: int) -> bytes:
        """Every perfect node of ``level``, concatenated in index order."""
        return bytes(self._levels[level]) if level < len(self._levels) else b""

    def node(self, level: int, index: int) -> bytes:
        if level >= len(self._levels) or not 0 <= index < len(self._levels[level]) // HASH_SIZE:
            raise KeyError(f"no perfect node at level {level} index {index}")
        start = index * HASH_SIZE
        return bytes(self._levels[level][start : start + HASH_SIZE])

    def level_size(self, level: int) -> int:
        """How many perfect nodes the tree has at ``level``."""
        return len(self._levels[level]) // HASH_SIZE if level < len(self._levels) else 0

    @property
    def height(self) -> int:
        return len(self._levels)

    def root(self) -> bytes:
        return self._frontier.root()
