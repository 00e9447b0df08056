"""Child process for the crash test: append forever, print each index once its commit returns.

Every third transaction appends two entries and counts a ticket use in one commit, so a kill
can land inside a multi-write transaction too.
"""

from __future__ import annotations

import asyncio
import sys

from store.checkpoint import CheckpointSigner
from store.db import Store
from store.transaction import StoreTransaction


def _pair(tx: StoreTransaction) -> int:
    tx.append("session.requested", {"door": "front"})
    tx.state.consume_use("k4.pid.crash", f"ticket-{tx.tree_size}", 1, tx.now_ms())
    return tx.append("session.granted", {"door": "front"}).entry.index


async def main(path: str, seed_hex: str) -> None:
    signer = CheckpointSigner.from_secret(bytes.fromhex(seed_hex), "gw-crash")
    store = await Store.open(path, signer=signer, checkpoint_every=7)
    try:
        n = 0
        while True:
            if n % 3 == 2:
                index = await store.transact(_pair)
            else:
                index = (await store.append("lock.unlocked", {"n": n, "pad": "x" * 64})).entry.index
            sys.stdout.write(f"{index}\n")
            sys.stdout.flush()
            n += 1
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
