"""Fixtures for the gateway service: a real gateway directory (threshold init), the real
service on loopback HTTPS with the virtual Nuki lock reached through bleak over Bumble, the
owner's and holders' keys, and ticket issuance with the real ticket code.

Every wait has a timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from ble.driver import LockState
from ble.sim.vendor import SimulatedDoor
from gateway.app.config import load
from gateway.app.provision import init_gateway
from gateway.app.wiring import Gateway, Overrides
from gateway.clients.lan import GatewayClient
from gateway.trust.base64url import b64u_encode
from gateway.trust.ticket import Camera, Delivery, Purpose, Ticket, package_hash, sign_ticket

WAIT = 15.0
GATEWAY_ID = "gw-test"


def secret64(key: SigningKey) -> bytes:
    return bytes(key) + bytes(key.verify_key)


@dataclass
class Keys:
    owner: SigningKey = field(default_factory=SigningKey.generate)

    @property
    def owner_pub(self) -> str:
        return b64u_encode(bytes(self.owner.verify_key))


@dataclass
class IssuedTicket:
    token: str
    jti: str
    holder: SigningKey
    door: str


def make_ticket(
    owner: SigningKey,
    *,
    gateway_id: str = GATEWAY_ID,
    door: str = "front",
    purpose: Purpose = Purpose.DELIVERY,
    package_codes: tuple[str, ...] = ("PKG-1",),
    uses: int = 1,
    camera: Camera = Camera.PREFERRED,
    approval: str | None = None,
    open_s: int = 60,
    schedule: tuple[Any, ...] = (),
    subject: str = "courier",
    now: datetime | None = None,
    lifetime: timedelta = timedelta(hours=2),
    nbf: datetime | None = None,
    issuer: SigningKey | None = None,
    issuer_name: str = "owner",
    certificate: str | None = None,
    jti: str | None = None,
) -> IssuedTicket:
    holder = SigningKey.generate()
    now = now or datetime.now(UTC)
    jti = jti or "t-" + secrets.token_hex(8)
    start = nbf or now - timedelta(minutes=1)
    ticket = Ticket(
        iss=issuer_name,
        sub=subject,
        aud=gateway_id,
        jti=jti,
        iat=start,
        nbf=start,
        exp=start + lifetime,
        door=door,
        purpose=purpose,
        cnf=bytes(holder.verify_key),
        uses=uses,
        schedule=schedule,
        delivery=(
            Delivery("order-1", tuple(package_hash(c) for c in package_codes))
            if purpose is Purpose.DELIVERY
            else None
        ),
        approval=approval,
        open_s=open_s,
        camera=camera,
    )
    token = sign_ticket(ticket, secret64(issuer or owner), certificate)
    return IssuedTicket(token, jti, holder, door)


@dataclass
class GatewayHarness:
    directory: Path
    keys: Keys
    gateway: Gateway
    client: GatewayClient

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def sim(self) -> SimulatedDoor:
        assert self.gateway.locks is not None
        return self.gateway.locks.simulated["front"]

    def ticket(self, **kw: Any) -> IssuedTicket:
        return make_ticket(self.keys.owner, **kw)

    async def open(self, t: IssuedTicket, **kw: Any) -> Any:
        return await self.client.open(
            gateway_id=GATEWAY_ID, ticket=t.token, jti=t.jti, holder=t.holder, door=t.door, **kw
        )

    async def done(self, t: IssuedTicket, session_id: str) -> dict[str, Any]:
        return await self.client.done(
            gateway_id=GATEWAY_ID, session_id=session_id, jti=t.jti, holder=t.holder
        )

    async def wait_lock(self, state: LockState, limit_s: float = WAIT) -> None:
        await wait_lock(self.sim, state, limit_s)

    async def wait_session(self, session_id: str, state: str, limit_s: float = WAIT) -> None:
        assert self.gateway.service is not None
        service = self.gateway.service

        def reached() -> bool:
            view = service.view(session_id)
            return view is not None and view.state == state

        await service.wait_for(reached, limit_s)


def lock_state(sim: SimulatedDoor) -> LockState:
    name = sim.lock.lock_state.name
    return {
        "LOCKED": LockState.LOCKED,
        "UNLOCKED": LockState.UNLOCKED,
        "UNLATCHED": LockState.UNLOCKED,
    }.get(name, LockState.UNKNOWN)


async def wait_lock(sim: SimulatedDoor, state: LockState, limit_s: float = WAIT) -> None:
    """Wait for the virtual lock's bolt to reach ``state`` (woken by its state listener)."""
    changed = asyncio.Event()
    sim.lock.on_state_change(changed.set)
    async with asyncio.timeout(limit_s):
        while lock_state(sim) is not state:
            changed.clear()
            await changed.wait()


async def make_gateway_dir(
    directory: Path,
    keys: Keys,
    *,
    allow_without_camera: bool = True,
    tz: str = "UTC",
    gateway_id: str = GATEWAY_ID,
) -> Path:
    result = await asyncio.to_thread(
        init_gateway,
        directory,
        owner_pub=keys.owner_pub,
        gateway_id=gateway_id,
        timezone=tz,
        bind="127.0.0.1:0",
        allow_without_camera=allow_without_camera,
    )
    return result.config_path


def set_config(path: Path, section: str, key: str, value: str) -> None:
    """Edit one key of threshold.toml (tests of non-default settings)."""
    lines = path.read_text().splitlines()
    out: list[str] = []
    current = ""
    done = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            current = stripped.strip("[]")
        if not done and current == section and stripped.startswith(f"{key} ="):
            out.append(f"{key} = {value}")
            done = True
        else:
            out.append(line)
    assert done, f"{section}.{key} not in {path}"
    path.write_text("\n".join(out) + "\n")


def set_cloud(path: Path, url: str, **keys: str) -> None:
    """Point a gateway at a relay: uncomment the template's ``[cloud] url`` and set ``keys``
    (values are TOML literals, e.g. ``interval_s="3600"``)."""
    text = path.read_text()
    commented = '# url = "https://relay.example:8443"'
    assert commented in text, "the template's [cloud] table changed"
    path.write_text(text.replace(commented, f'url = "{url}"', 1))
    for key, value in keys.items():
        set_config(path, "cloud", key, value)


async def start_gateway(config_path: Path, **overrides: Any) -> Gateway:
    options: dict[str, Any] = {"port": 0, "mdns": False, "metrics_port": 0, **overrides}
    gateway = Gateway(load(config_path), Overrides(**options))
    async with asyncio.timeout(WAIT * 2):
        await gateway.start()
    return gateway


@contextlib.asynccontextmanager
async def running_harness(
    directory: Path,
    *,
    settings: dict[tuple[str, str], str] | None = None,
    allow_without_camera: bool = True,
    gateway_id: str = GATEWAY_ID,
    configure: Callable[[Path], None] | None = None,
    **overrides: Any,
) -> AsyncIterator[GatewayHarness]:
    """init a gateway in ``directory`` (config edits applied, then ``configure(config
    path)``), start it, yield, stop it."""
    keys = Keys()
    config = await make_gateway_dir(
        directory, keys, allow_without_camera=allow_without_camera, gateway_id=gateway_id
    )
    for (section, key), value in (settings or {}).items():
        set_config(config, section, key, value)
    if configure is not None:
        configure(config)
    gateway = await start_gateway(config, **overrides)
    client = GatewayClient(gateway.url, fingerprint=gateway.fingerprint, timeout_s=WAIT)
    try:
        yield GatewayHarness(directory, keys, gateway, client)
    finally:
        await client.close()
        async with asyncio.timeout(WAIT):
            await gateway.stop()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    async with running_harness(tmp_path / "gw") as h:
        yield h
