"""A gateway's upload replayed, over HTTP, to the relay that served it and to another relay
process on the same database (SQLite and PostgreSQL): refused as a replay, with nothing of it
kept. The upload's nonce is claimed inside the upload's own transaction, so this is the test
that the claim still happens there, and is still seen by every process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import aiohttp

from cloud import wire
from cloud.relay import Relay, RelayServer
from cloud.signed_request import gateway_principal, sign_request
from store import merkle
from store.checkpoint import CheckpointSigner
from store.merkle import MemoryTree
from tests.support.cloud import GATEWAY_ID, new_parties, start_relay
from tests.support.relay_backend import RelayBackend

TIMEOUT = aiohttp.ClientTimeout(total=30)


async def test_an_upload_replayed_to_either_process_is_refused(
    tmp_path: Path, relay_backend: RelayBackend
) -> None:
    parties = new_parties()
    directory = tmp_path / "cloud"
    first, first_url = await start_relay(directory, parties, backend=relay_backend)
    # A second relay process: its own storage connections on the same database.
    second = RelayServer(Relay(directory, storage=relay_backend.config(directory)))
    second_url = await second.start()
    sealed = [os.urandom(600) for _ in range(20)]
    tree = MemoryTree([merkle.leaf_hash(s) for s in sealed])
    checkpoint = CheckpointSigner(parties.gateway, GATEWAY_ID).sign(20, tree.root(), 1_000)
    path = f"/v1/gateways/{GATEWAY_ID}/entries"

    def signed_upload(start: int, end: int) -> tuple[bytes, dict[str, str]]:
        batch = wire.UploadBatch(
            GATEWAY_ID,
            start,
            tuple(sealed[start:end]),
            checkpoint,
            tuple(merkle.consistency_proof(tree, end, 20)),
        )
        body = wire.encode_batch(batch)
        headers = sign_request(
            parties.gateway, gateway_principal(GATEWAY_ID), "POST", path, body, int(time.time())
        )
        return body, {**headers, "Content-Type": wire.BATCH_CONTENT_TYPE}

    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:

            async def post(
                url: str, body: bytes, headers: dict[str, str]
            ) -> tuple[int, dict[str, object]]:
                async with session.post(url + path, data=body, headers=headers) as response:
                    return response.status, await response.json(content_type=None)

            body, headers = signed_upload(0, 10)
            status, answer = await post(first_url, body, headers)
            assert (status, answer["acked_size"]) == (200, 10)
            for url in (second_url, first_url):
                status, answer = await post(url, body, headers)
                assert (status, answer["code"]) == (401, "unauthorized"), answer
                assert "replayed" in answer["detail"]
            # The rest of the log, sent to the second process, and replayed to the first.
            body, headers = signed_upload(10, 20)
            status, answer = await post(second_url, body, headers)
            assert (status, answer["acked_size"]) == (200, 20)
            status, answer = await post(first_url, body, headers)
            assert status == 401
        assert await first.relay.storage.held_size(GATEWAY_ID) == 20
        witnessed = await second.relay.storage.witnessed(GATEWAY_ID)
        assert [w.checkpoint.checkpoint.tree_size for w in witnessed] == [20]
        assert await first.relay.storage.alarms(GATEWAY_ID) == []
        refusals = first.relay.metrics.exposition().decode()
        assert 'threshold_relay_refusals_total{code="unauthorized"} 2.0' in refusals
    finally:
        await second.stop()
        await first.stop()
