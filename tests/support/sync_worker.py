"""A gateway process for fault tests: writes entries while the real sync task runs.

Run as ``python -m tests.support.sync_worker CONFIG_JSON``. Prints one line per event:
``start <acked>``, ``acked <n>``, and at the end ``done {json}`` with its peak RSS and its
RSS before syncing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

from nacl.signing import SigningKey

from gateway.sync.task import CloudSync, SyncConfig
from gateway.trust.seal import Sealer
from store.checkpoint import CheckpointSigner
from store.db import Store
from tests.support.cloud import delivery_body
from tests.support.memory import peak_rss_mb, rss_mb


async def main(config: dict[str, object]) -> None:
    gateway = SigningKey(base64.b64decode(str(config["gateway_seed"])))
    owner_public = base64.b64decode(str(config["owner_public"]))
    store = await Store.open(
        Path(str(config["db"])),
        signer=CheckpointSigner(gateway, str(config["gateway_id"])),
        seal=Sealer(owner_public),
        checkpoint_every=256,
    )
    target = int(str(config["total"]))
    done = asyncio.Event()

    def on_ack(size: int) -> None:
        print(f"acked {size}", flush=True)
        if size >= target:
            done.set()

    sync = CloudSync(
        store,
        SyncConfig(
            cloud_url=str(config["cloud"]),
            gateway_id=str(config["gateway_id"]),
            gateway_key=gateway,
            interval_s=float(str(config.get("interval_s", 0.05))),
            backoff_cap_s=float(str(config.get("backoff_cap_s", 0.5))),
            probe_interval_s=0.05,
            min_retry_s=0.05,
        ),
        on_ack=on_ack,
    )
    # What the process holds before syncing (interpreter, libraries, the open store): the
    # fault tests bound what syncing adds to it, not what the imports cost.
    baseline_mb = rss_mb()
    print(f"start {await store.acked_tree_size()}", flush=True)
    await sync.start()
    chunk = int(str(config.get("chunk", 50)))
    while store.tree_size < target:
        count = min(chunk, target - store.tree_size)
        first = store.tree_size

        def write(tx: object, first: int = first, count: int = count) -> None:
            for n in range(first, first + count):
                tx.append("session.granted", delivery_body(n))  # type: ignore[attr-defined]

        await store.transact(write)
        await asyncio.sleep(0)
    if await store.acked_tree_size() >= target:
        done.set()
    await asyncio.wait_for(done.wait(), float(str(config.get("timeout_s", 120))))
    await sync.stop()
    await store.close()
    result = {
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline_mb,
        "status": sync.status.to_json(),
    }
    print("done " + json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
