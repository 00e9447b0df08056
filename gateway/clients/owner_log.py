"""The owner's view of a gateway's log as the relay holds it: verify everything, then unseal.

Pure: the CLI downloads; this module checks. The owner trusts neither the relay nor the
gateway's disk: the sealed entries must rebuild (RFC 9162) to the root of every checkpoint
the gateway signed and every receipt a courier delivered, each signature must verify with the
gateway's key, and every entry must open with the owner's key and decode canonically with its
own index. Anything that fails becomes a problem listed above the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cloud import wire
from gateway.trust.seal import PADDING_KIND, SealError, Unsealer
from store import commitment, merkle
from store.checkpoint import SignedCheckpoint
from store.entry import AuditEntry, canonical_body, decode_entry
from store.errors import InvalidEntry


def open_leaf(unseal: Unsealer, leaf: bytes) -> AuditEntry:
    """The entry inside a sealed leaf of either format (docs/audit-log.md). In format 2 the
    seal also holds the entry's commitment key, and the leaf's field tags must match what the
    seal holds: the owner checks the gateway's commitments too."""
    form = commitment.leaf_form(leaf)
    if form is commitment.LeafForm.PLAIN:
        raise InvalidEntry("the leaf is not sealed")
    entry_key, canonical = commitment.open_payload(unseal.open(commitment.leaf_sealed_box(leaf)))
    entry = decode_entry(canonical)
    if form is not None and form.committed:
        if entry_key is None:
            raise InvalidEntry("a format-2 leaf whose seal holds no commitment key")
        field = commitment.bad_field(
            commitment.leaf_tags(leaf),
            entry_key,
            entry.time_ms,
            entry.kind,
            canonical_body(entry.body).decode("utf-8"),
        )
        if field:
            raise InvalidEntry(f"the leaf's commitment to {field} does not match the sealed entry")
    elif entry_key is not None:
        raise InvalidEntry("a format-1 leaf whose seal holds a format-2 payload")
    return entry


@dataclass(frozen=True)
class WitnessedCheckpoint:
    checkpoint: SignedCheckpoint
    source: str
    cosignature: bytes | None


@dataclass
class OwnerLog:
    entries: list[AuditEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    verified_size: int = 0
    #: Padding entries of the paced upload (docs/privacy.md): verified with the rest, opened
    #: by the owner's key, counted here and left out of ``entries``.
    padding: int = 0


def verify_and_open(
    sealed: Sequence[tuple[int, bytes]],
    checkpoints: Sequence[WitnessedCheckpoint],
    gateway_key: bytes,
    unseal: Unsealer,
    relay_id: str,
    relay_key: bytes | None,
) -> OwnerLog:
    log = OwnerLog()
    tree = merkle.MemoryTree()
    for expected, (index, leaf) in enumerate(sealed):
        if index != expected:
            log.problems.append(f"entry {expected} is missing (the relay sent {index})")
            break
        tree.append(merkle.leaf_hash(leaf))
        try:
            entry = open_leaf(unseal, leaf)
        except (SealError, InvalidEntry) as exc:
            log.problems.append(f"entry {index} does not open or decode: {exc}")
            continue
        if entry.index != index:
            log.problems.append(f"entry {index} carries index {entry.index}: moved")
            continue
        if entry.kind == PADDING_KIND:
            log.padding += 1
            continue
        log.entries.append(entry)
    for seen in checkpoints:
        cp = seen.checkpoint.checkpoint
        if not seen.checkpoint.verify(gateway_key):
            log.problems.append(
                f"the {seen.source} checkpoint of size {cp.tree_size} is not signed by the gateway"
            )
            continue
        if cp.tree_size > tree.size:
            if seen.source == "receipt":
                log.problems.append(
                    f"a receipt witnessed {cp.tree_size} entries; the relay holds {tree.size}"
                )
            continue
        if merkle.root_at(tree, cp.tree_size) != cp.root_hash:
            log.problems.append(
                f"the entries disagree with the {seen.source} checkpoint of size {cp.tree_size}"
            )
            continue
        if (
            seen.cosignature is not None
            and relay_key is not None
            and not wire.verify_cosignature(relay_key, relay_id, cp, seen.cosignature)
        ):
            log.problems.append(f"the relay's cosignature of size {cp.tree_size} is bad")
            continue
        log.verified_size = max(log.verified_size, cp.tree_size)
    if tree.size > log.verified_size:
        log.problems.append(
            f"entries {log.verified_size}..{tree.size - 1} are not covered by a signed checkpoint"
        )
    return log
