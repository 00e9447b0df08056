"""Issue 11, finding 7: an impostor gateway collects the owner's signed ``unlock`` and
replays it to the real gateway, and the owner's client talks to whatever answers.

The impostor is another real gateway: ``threshold init`` with the same gateway id and the
owner's (public) key, so it has its own TLS key. Its owner-request verifier is wrapped to
keep a copy of every signed request it receives, which is all an attacker needs. The owner
runs ``threshold owner`` as the README does, without ``--pin-fingerprint``.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest

import gateway.app.wiring as wiring
from ble.driver import LockState
from gateway.app.config import DoorConfig
from gateway.app.provision import init_gateway
from gateway.app.wiring import Gateway
from gateway.trust.base64url import b64u_encode
from gateway.trust.owner_request import OwnerRequest, OwnerRequestVerifier
from tests.support.cli import run_cli
from tests.support.service import (
    GATEWAY_ID,
    WAIT,
    Keys,
    lock_state,
    make_gateway_dir,
    secret64,
    start_gateway,
)


@dataclass(frozen=True)
class Captured:
    method: str
    path_qs: str
    body: bytes
    headers: dict[str, str]


class CollectingVerifier(OwnerRequestVerifier):
    """The impostor's verifier: a real one that keeps what it was sent."""

    collected: ClassVar[list[Captured]] = []

    def verify(
        self, method: str, path_qs: str, body: bytes, headers: dict[str, str], now: float
    ) -> OwnerRequest:
        self.collected.append(Captured(method, path_qs, body, dict(headers)))
        return super().verify(method, path_qs, body, headers, now)


@dataclass
class Scene:
    tmp: Path
    keys: Keys
    owner_key: Path
    real: Gateway
    impostor: Gateway


async def start_impostor(config: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Gateway:
    with monkeypatch.context() as patch:
        patch.setattr(wiring, "OwnerRequestVerifier", CollectingVerifier)
        return await start_gateway(config, **kw)


@pytest.fixture
async def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Scene]:
    keys = Keys()
    # The real gateway's front door is its second lock: the virtual locks of two gateways in
    # one process must not share a Bluetooth address (bleak caches devices by address).
    real = await asyncio.to_thread(
        init_gateway,
        tmp_path / "real",
        owner_pub=keys.owner_pub,
        gateway_id=GATEWAY_ID,
        doors=(DoorConfig("spare", "sim"), DoorConfig("front", "sim")),
        bind="127.0.0.1:0",
        allow_without_camera=True,
    )
    real_config = real.config_path
    impostor_config = await make_gateway_dir(tmp_path / "impostor", keys)
    owner_key = tmp_path / "owner.key"
    fd = os.open(owner_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (b64u_encode(secret64(keys.owner)) + "\n").encode())
    os.close(fd)
    CollectingVerifier.collected = []
    real_gateway = await start_gateway(real_config)
    impostor = await start_impostor(impostor_config, monkeypatch)
    try:
        assert real_gateway.fingerprint != impostor.fingerprint  # two keys, one gateway id
        yield Scene(tmp_path, keys, owner_key, real_gateway, impostor)
    finally:
        for gateway in (impostor, real_gateway):
            async with asyncio.timeout(WAIT):
                await gateway.stop()


async def owner_cli(scene: Scene, known: Path, url: str, *argv: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(
        run_cli,
        "owner",
        *argv,
        "--gateway",
        url,
        "--owner-key",
        str(scene.owner_key),
        "--known-gateways",
        str(known),
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


def front(gateway: Gateway) -> LockState:
    assert gateway.locks is not None
    return lock_state(gateway.locks.simulated["front"])


async def test_a_collected_unlock_replayed_to_the_real_gateway_is_refused(scene: Scene) -> None:
    # The owner's first contact is the impostor (it answered first on the network).
    code, _, err = await owner_cli(
        scene, scene.tmp / "known-a", scene.impostor.url, "unlock", "--door", "front"
    )
    assert code == 0, err
    assert "first contact with gw-test" in err
    unlocks = [c for c in CollectingVerifier.collected if c.path_qs == "/v1/owner/lock"]
    assert len(unlocks) == 1
    stolen = unlocks[0]

    # Within the signature's time window the attacker replays it to the real gateway.
    assert front(scene.real) is LockState.LOCKED
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.post(
            scene.real.url + stolen.path_qs,
            data=stolen.body,
            headers={**stolen.headers, "Content-Type": "application/json"},
            ssl=False,
        ) as resp,
    ):
        problem = await resp.json(content_type=None)
    assert (resp.status, problem.get("code")) == (401, "unauthorized"), problem
    assert front(scene.real) is LockState.LOCKED


async def test_the_client_refuses_the_impostor_once_the_real_gateway_is_pinned(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = scene.tmp / "known-b"
    code, _, err = await owner_cli(scene, known, scene.real.url, "events")
    assert code == 0, err
    assert f"first contact with {GATEWAY_ID}" in err
    assert scene.real.fingerprint in err  # trust on first use is stated, with the pin
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert scene.real.fingerprint in known.read_text()

    # The impostor, elsewhere on the network, claims the same gateway id.
    code, _, err = await owner_cli(scene, known, scene.impostor.url, "unlock", "--door", "front")
    assert code == 1
    assert err.count("\n") == 1, err  # one line
    assert "gateway_key_changed" in err
    assert "Traceback" not in err
    assert CollectingVerifier.collected == []  # nothing signed was sent to it

    # The impostor takes the real gateway's address (the real one is down).
    port = scene.real.port
    await scene.real.stop()
    await scene.impostor.stop()
    taken = await start_impostor(
        scene.impostor.config.directory / "threshold.toml", monkeypatch, port=port
    )
    try:
        code, _, err = await owner_cli(scene, known, taken.url, "unlock", "--door", "front")
        assert code == 1
        assert err.count("\n") == 1, err
        assert "gateway_key_changed" in err
        assert scene.real.fingerprint in err  # the pin it holds, and where
        assert str(known) in err
        assert CollectingVerifier.collected == []
        assert front(taken) is LockState.LOCKED
    finally:
        async with asyncio.timeout(WAIT):
            await taken.stop()
