"""Shared helpers for store tests: a gateway key, a controllable clock, opening real stores."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from nacl.signing import SigningKey

from store.checkpoint import CheckpointSigner
from store.db import Store
from store.entry import EntrySealer

ORIGIN = "gw-test-0001"


class ManualClock:
    """A clock tests move by hand (Unix milliseconds)."""

    def __init__(self, now_ms: int = 1_790_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


def new_signer(origin: str = ORIGIN) -> CheckpointSigner:
    return CheckpointSigner(SigningKey(os.urandom(32)), origin)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def open_store(
    path: Path,
    signer: CheckpointSigner | None = None,
    *,
    checkpoint_every: int = 16,
    clock: ManualClock | None = None,
    seal: EntrySealer | None = None,
) -> Store:
    return await Store.open(
        path,
        signer=signer,
        checkpoint_every=checkpoint_every,
        clock=clock or ManualClock(),
        seal=seal,
    )
