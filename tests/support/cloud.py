"""Shared helpers for cloud tests: keys, a relay on loopback, a sealed gateway store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from cloud.relay import Relay, RelayServer
from gateway.sync.task import CloudSync, MailboxHandler, SyncConfig
from gateway.trust.seal import Sealer
from store.checkpoint import CheckpointSigner
from store.db import Store
from tests.support.relay_backend import RelayBackend

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
    directory: Path, parties: Parties, backend: RelayBackend | None = None, **kwargs: object
) -> tuple[RelayServer, str]:
    relay = Relay(directory, storage=None if backend is None else backend.config(directory))
    await relay.register_gateway(GATEWAY_ID, parties.gateway_public, parties.owner_public)
    server = RelayServer(relay)
    url = await server.start(**kwargs)  # type: ignore[arg-type]
    return server, url


async def open_sealed_store(path: Path, parties: Parties, checkpoint_every: int = 256) -> Store:
    return await Store.open(
        path,
        signer=CheckpointSigner(parties.gateway, GATEWAY_ID),
        seal=Sealer(parties.owner_public),
        checkpoint_every=checkpoint_every,
    )


class MailRecorder:
    """A ``MailboxHandler`` that keeps what the sync task hands it (tests of the sync path
    alone; the gateway's own handler is ``gateway.sync.mailbox.AccessMailbox``)."""

    def __init__(self) -> None:
        self.revocations: list[str] = []
        self.approvals: list[str] = []
        self.floors: list[int] = []

    async def apply_revocations(self, token: str) -> None:
        self.revocations.append(token)

    async def apply_approval(self, token: str) -> None:
        self.approvals.append(token)

    async def raise_time_floor(self, time_ms: int) -> int | None:
        self.floors.append(time_ms)
        return None


def sync_for(
    store: Store,
    url: str,
    parties: Parties,
    relay_key: bytes | None = None,
    mailbox: MailboxHandler | None = None,
    **kwargs: object,
) -> CloudSync:
    config = SyncConfig(
        cloud_url=url,
        gateway_id=GATEWAY_ID,
        gateway_key=parties.gateway,
        relay_key=relay_key,
        **kwargs,  # type: ignore[arg-type]
    )
    return CloudSync(store, config, mailbox)


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


def truncate_log(path: Path, keep: int) -> None:
    """What a thief with the disk does: drop the append-only triggers, cut the log's tail."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for trigger in ("audit_entry_no_delete", "merkle_node_no_delete", "checkpoint_no_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("DELETE FROM checkpoint_cosignature")
        conn.execute("DELETE FROM audit_entry WHERE idx >= ?", (keep,))
        conn.execute("DELETE FROM merkle_node WHERE (idx + 1) * (1 << level) > ?", (keep,))
        conn.execute("DELETE FROM checkpoint WHERE tree_size > ?", (keep,))
    finally:
        conn.close()


def write_key_file(path: Path, key: SigningKey) -> Path:
    import base64

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(bytes(key)).rstrip(b"=").decode() + "\n")
    return path
