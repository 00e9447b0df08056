"""Receipts for a visitor's phone: the session's entries, a signed checkpoint, their proofs.

DESIGN §7: a log on a device a thief can carry off is complete only up to the last checkpoint
someone else has seen. The ``done`` response of an access session carries a receipt; the
courier's phone uploads it to the relay (``threshold courier receipts upload``), which keeps
it as a witnessed checkpoint and flags any later log that disagrees with it.

The leaves in a receipt are the sealed bytes, so the phone and the relay learn nothing of the
entries; the inclusion proofs tie them to the gateway-signed checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

from cloud.wire import WireReceipt
from gateway.errors import GatewayError
from store.db import Store


class ReceiptError(GatewayError):
    code = "receipt_unavailable"


async def build_receipt(store: Store, indexes: Sequence[int]) -> WireReceipt:
    """A receipt for ``indexes`` under a checkpoint of the whole log as it stands now (the
    witness is worth most when it covers everything written so far)."""
    if not indexes or len(indexes) > 64:
        raise ReceiptError("a receipt covers 1 to 64 entries")
    checkpoint = await store.checkpoint()
    size = checkpoint.checkpoint.tree_size
    entries: list[tuple[int, bytes, tuple[bytes, ...]]] = []
    for index in sorted(set(indexes)):
        stored = await store.entry(index)
        if stored is None or index >= size:
            raise ReceiptError(f"the audit log has no entry {index}")
        proof = await store.inclusion_proof(index, size)
        entries.append((index, stored.leaf_bytes, tuple(proof)))
    return WireReceipt(checkpoint.checkpoint.origin, checkpoint, tuple(entries))
