"""Shared helpers for cloud tests: keys, a relay on loopback, a sealed gateway store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from cloud.relay import Relay, RelayServer
from gateway.seal import OwnerSeal
from gateway.sync import CloudSync, SyncConfig
from store.checkpoint import CheckpointSigner
from store.db import Store

GATEWAY_ID = "gw-cloud-test"


@dataclass
class Parties:
    owner: SigningKey
    gateway: SigningKey

    @property
    def owner_public(self) -> bytes:
        return bytes(self.owner.verify_key)

    @property
    def gateway_public(self) -> bytes:
        return bytes(self.gateway.verify_key)


def new_parties() -> Parties:
    return Parties(SigningKey(os.urandom(32)), SigningKey(os.urandom(32)))


async def start_relay(
    directory: Path, parties: Parties, **kwargs: object
) -> tuple[RelayServer, str]:
    relay = Relay(directory)
    await relay.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    server = RelayServer(relay)
    url = await server.start(**kwargs)  # type: ignore[arg-type]
    return server, url


async def open_sealed_store(path: Path, parties: Parties, checkpoint_every: int = 256) -> Store:
    return await Store.open(
        path,
        signer=CheckpointSigner(parties.gateway, GATEWAY_ID),
        seal=OwnerSeal(parties.owner_public),
        checkpoint_every=checkpoint_every,
    )


def sync_for(
    store: Store, url: str, parties: Parties, relay_key: bytes | None = None, **kwargs: object
) -> CloudSync:
    config = SyncConfig(
        cloud_url=url,
        gateway_id=GATEWAY_ID,
        gateway_key=parties.gateway,
        relay_key=relay_key,
        **kwargs,  # type: ignore[arg-type]
    )
    return CloudSync(store, config)


def delivery_body(n: int) -> dict[str, object]:
    return {
        "door": "front",
        "holder": f"Courier Number {n}",
        "order": f"ORDER-{n:08d}",
        "purpose": "delivery",
    }


async def append_many(store: Store, count: int, start: int = 0) -> None:
    def write(tx: object) -> None:
        for n in range(start, start + count):
            tx.append("session.granted", delivery_body(n))  # type: ignore[attr-defined]

    await store.transact(write)
