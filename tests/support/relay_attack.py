"""What an attacker on the network sends a relay on loopback: raw HTTP/1.1 exchanges (any
header bytes, any body, from any 127.0.0.0/8 source address) and forged receipts."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from cloud.ratelimit import Rate
from cloud.relay import Relay, RelayServer
from store.checkpoint import CheckpointSigner
from tests.support.cloud import GATEWAY_ID, Parties
from tests.support.relay_backend import RelayBackend

WAIT = 10.0
#: Budgets too large to be met by a test that is not about them.
UNLIMITED = Rate(per_minute=60_000, burst=10_000)


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


async def start_relay_with(
    directory: Path,
    parties: Parties,
    *,
    per_client: Rate = UNLIMITED,
    overall: Rate = UNLIMITED,
    max_clients: int = 10_000,
    backend: RelayBackend | None = None,
) -> tuple[RelayServer, int]:
    relay = Relay(
        directory,
        storage=None if backend is None else backend.config(directory),
        receipts_per_client=per_client,
        receipts_overall=overall,
        max_clients=max_clients,
    )
    await relay.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    server = RelayServer(relay)
    await server.start()
    return server, server.port


async def raw_request(
    port: int,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    source: str = "127.0.0.1",
) -> RawReply:
    """One request on its own connection, header values sent as UTF-8 bytes unchecked."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        try:
            writer.write(head + body)
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()

    raw = await asyncio.wait_for(exchange(), WAIT)
    head_bytes, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    reply_headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        reply_headers[name.strip().lower()] = value.strip()
    return RawReply(int(status_line.split()[1]), reply_headers, payload)


def forged_receipt(gateway_id: str, tree_size: int = 8) -> dict[str, Any]:
    """A well-formed receipt whose checkpoint is signed by a key the gateway never had."""
    signer = CheckpointSigner(SigningKey.generate(), gateway_id)
    signed = signer.sign(tree_size, os.urandom(32), 1_800_000_000_000)
    return {"gateway": gateway_id, "checkpoint": signed.to_json(), "entries": []}


async def post_receipt(port: int, receipt: object, *, source: str = "127.0.0.1") -> RawReply:
    body = receipt if isinstance(receipt, bytes) else json.dumps(receipt).encode()
    return await raw_request(
        port,
        "POST",
        "/v1/receipts",
        headers={"Content-Type": "application/json"},
        body=body,
        source=source,
    )
