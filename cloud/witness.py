"""The relay as a witness: the checks every upload and every receipt must pass.

Theory of operation. For each gateway the relay holds a prefix of its log: the sealed leaves
0..held-1, their RFC 9162 tree (every perfect subtree, as the gateway's store keeps it), and
the checkpoints it has *witnessed*: those that came with accepted uploads and those couriers
delivered in receipts. An upload carries entries [start, end), the gateway's latest signed
checkpoint C (size >= end) and a consistency proof from the tree of size ``end`` to C.

The relay accepts a batch only if all of this holds; otherwise nothing of it is kept:

1. C is signed by the gateway's registered key and names that gateway;
2. ``start <= held`` (no gap; a gap is not an alarm, the relay just answers its held size);
3. every entry below ``held`` hashes to the leaf already held (a replay is a no-op, a
   different entry at an index already held is a rewrite: alarm);
4. the root of the first ``end`` leaves (held, plus the new ones) is consistent with C;
5. no witnessed checkpoint is larger than C (a shorter log than one already witnessed is a
   truncation: alarm), none of C's size has another root, and every witnessed checkpoint the
   new leaves reach has the root those leaves give (a rewritten or forked log: alarm).

A receipt's checkpoint is checked the same way: against the held leaves if they reach it,
otherwise it waits as a witnessed checkpoint for the upload that reaches it (check 5).

Pure: the storage layer hands in what the checks need and writes what they return. A storage
that cannot read tree nodes on demand (an async database driver) fetches the nodes
:func:`nodes_for_batch` / :func:`nodes_for_receipt` name before the check, hands them in as
:class:`FetchedNodes`, and fetches whatever a :class:`NodeMissing` names should the
prediction ever fall short (the check is then simply run again).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloud.errors import CloudError
from cloud.wire import UploadBatch, WireReceipt
from store import merkle
from store.checkpoint import SignedCheckpoint
from store.merkle import CompletedNode, MerkleFrontier, PerfectNodes


class Finding(enum.Enum):
    """Why a batch or receipt was refused. Alarms are kept for the owner."""

    GAP = "gap"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    REWRITE = "rewrite"
    INCONSISTENT = "inconsistent_checkpoint"
    EQUIVOCATION = "equivocation"

    @property
    def is_alarm(self) -> bool:
        return self in (
            Finding.BAD_SIGNATURE,
            Finding.REWRITE,
            Finding.INCONSISTENT,
            Finding.EQUIVOCATION,
        )


@dataclass(frozen=True)
class Witnessed:
    tree_size: int
    root_hash: bytes
    source: str


@dataclass(frozen=True)
class Refused:
    finding: Finding
    detail: str


@dataclass(frozen=True)
class Accepted:
    """What to write: the new leaves (index, sealed, leaf hash), the nodes they complete."""

    new_size: int
    leaves: list[tuple[int, bytes, bytes]] = field(repr=False)
    nodes: list[CompletedNode] = field(repr=False)
    checkpoint: SignedCheckpoint


class _Overlay:
    """The held tree plus the leaves and nodes of the batch under test."""

    def __init__(self, held: PerfectNodes, held_size: int) -> None:
        self._held = held
        self._held_size = held_size
        self.new: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        found = self.new.get((level, index))
        return found if found is not None else self._held.node(level, index)


def check_batch(
    batch: UploadBatch,
    gateway_id: str,
    gateway_key: bytes,
    held: PerfectNodes,
    held_size: int,
    witnessed: Sequence[Witnessed],
) -> Accepted | Refused:
    """Decide on one upload. ``witnessed`` must hold every witnessed checkpoint whose size is
    at least C's or lies in (held_size, max(held_size, batch.end)]."""
    cp = batch.checkpoint.checkpoint
    if batch.gateway != gateway_id or cp.gateway_id != gateway_id:
        return Refused(Finding.MALFORMED, "the batch or its checkpoint names another gateway")
    if not batch.checkpoint.verify(gateway_key):
        return Refused(Finding.BAD_SIGNATURE, f"checkpoint of size {cp.tree_size} is not signed")
    if batch.end > cp.tree_size:
        return Refused(Finding.MALFORMED, "the checkpoint does not cover the batch")
    if batch.start > held_size:
        return Refused(Finding.GAP, f"batch starts at {batch.start}; the relay holds {held_size}")
    overlay = _Overlay(held, held_size)
    frontier = MerkleFrontier.load(held, held_size)
    leaves: list[tuple[int, bytes, bytes]] = []
    nodes: list[CompletedNode] = []
    for offset, sealed in enumerate(batch.entries):
        index = batch.start + offset
        digest = merkle.leaf_hash(sealed)
        if index < held_size:
            if held.node(0, index) != digest:
                return Refused(Finding.REWRITE, f"a different entry at index {index}")
            continue
        leaves.append((index, sealed, digest))
        overlay.new[(0, index)] = digest
        for done in frontier.append(digest):
            overlay.new[(done.level, done.index)] = done.hash
            nodes.append(done)
    new_size = frontier.size
    end_root = merkle.root_at(overlay, batch.end)
    if not merkle.verify_consistency(batch.end, cp.tree_size, end_root, cp.root_hash, batch.proof):
        return Refused(
            Finding.INCONSISTENT,
            f"entries up to {batch.end} are not a prefix of the signed tree of size {cp.tree_size}",
        )
    for seen in witnessed:
        if seen.tree_size > cp.tree_size:
            return Refused(
                Finding.EQUIVOCATION,
                f"the gateway signs a log of {cp.tree_size} entries after a {seen.source} "
                f"witnessed {seen.tree_size}: truncated",
            )
        if seen.tree_size == cp.tree_size and seen.root_hash != cp.root_hash:
            return Refused(
                Finding.EQUIVOCATION,
                f"two signed roots for size {cp.tree_size} (one from a {seen.source})",
            )
        if held_size < seen.tree_size <= new_size and (
            merkle.root_at(overlay, seen.tree_size) != seen.root_hash
        ):
            return Refused(
                Finding.EQUIVOCATION,
                f"the log disagrees with the checkpoint of size {seen.tree_size} a "
                f"{seen.source} witnessed: rewritten",
            )
    return Accepted(new_size, leaves, nodes, batch.checkpoint)


def check_receipt(
    receipt: WireReceipt,
    gateway_key: bytes,
    held: PerfectNodes,
    held_size: int,
    same_size: Sequence[Witnessed],
) -> Refused | None:
    """None when the receipt is genuine and agrees with what the relay holds so far."""
    cp = receipt.checkpoint.checkpoint
    if cp.gateway_id != receipt.gateway or not receipt.checkpoint.verify(gateway_key):
        return Refused(Finding.MALFORMED, "the receipt's checkpoint is not the gateway's")
    for index, leaf, proof in receipt.entries:
        if not merkle.verify_inclusion(
            merkle.leaf_hash(leaf), index, cp.tree_size, proof, cp.root_hash
        ):
            return Refused(Finding.MALFORMED, f"the receipt's proof for entry {index} fails")
    for seen in same_size:
        if seen.root_hash != cp.root_hash:
            return Refused(
                Finding.EQUIVOCATION, f"a receipt shows another root for size {cp.tree_size}"
            )
    if 0 < cp.tree_size <= held_size and merkle.root_at(held, cp.tree_size) != cp.root_hash:
        return Refused(
            Finding.EQUIVOCATION,
            f"the uploaded log disagrees with a receipt's checkpoint of size {cp.tree_size}",
        )
    return None


class NodeMissing(CloudError):
    """A check asked :class:`FetchedNodes` for a node that was not fetched beforehand."""

    code = "node_missing"

    def __init__(self, level: int, index: int) -> None:
        super().__init__(f"tree node ({level}, {index}) was not fetched")
        self.level = level
        self.index = index


class FetchedNodes:
    """``merkle.PerfectNodes`` over the held nodes a storage fetched before a check."""

    def __init__(self, nodes: dict[tuple[int, int], bytes] | None = None) -> None:
        self.nodes: dict[tuple[int, int], bytes] = dict(nodes or {})

    def node(self, level: int, index: int) -> bytes:
        found = self.nodes.get((level, index))
        if found is None:
            raise NodeMissing(level, index)
        return found


def compact_range(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) that make up the first ``size`` leaves."""
    out: list[tuple[int, int]] = []
    position = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            out.append((level, position >> level))
            position += 1 << level
    return out


def _held_part(sizes: Sequence[int], held_size: int) -> set[tuple[int, int]]:
    return {
        (level, index)
        for size in sizes
        for level, index in compact_range(size)
        if (index + 1) << level <= held_size
    }


def nodes_for_batch(
    batch: UploadBatch, held_size: int, witnessed: Sequence[Witnessed]
) -> set[tuple[int, int]]:
    """The held nodes :func:`check_batch` reads: the frontier of the held tree, the held
    leaves the batch repeats, and the held parts of the roots it computes (at the batch's end
    and at every witnessed size the new leaves reach). Nodes over the new leaves come from
    the batch itself."""
    replayed = range(batch.start, min(batch.end, held_size))
    new_size = max(held_size, batch.end)
    reached = [w.tree_size for w in witnessed if held_size < w.tree_size <= new_size]
    wanted = _held_part([held_size, batch.end, *reached], held_size)
    wanted.update((0, index) for index in replayed)
    return wanted


def nodes_for_receipt(receipt: WireReceipt, held_size: int) -> set[tuple[int, int]]:
    """The held nodes :func:`check_receipt` reads (the root at the receipt's size)."""
    size = receipt.checkpoint.checkpoint.tree_size
    return _held_part([size], held_size) if size <= held_size else set()
