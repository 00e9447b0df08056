"""``threshold init``: create a gateway directory (key, threshold.toml, TLS certificate, database).

Nothing that exists is ever overwritten: every file is created with ``O_EXCL``, and the whole
directory is checked first so that a refused init leaves no partial set of files behind.
"""

from __future__ import annotations

import asyncio
import secrets
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nacl.signing import SigningKey

from gateway.app.config import (
    GATEWAY_ID_RE,
    DoorConfig,
    load,
    parse,
    parse_bind,
    parse_lock_spec,
    render,
)
from gateway.app.identity import new_signing_key_text
from gateway.app.tls import host_names, make_certificate, new_key_pem, tls_fingerprint
from gateway.errors import UsageError
from gateway.owner.household import ensure_key as ensure_household_key
from gateway.push.vapid import ensure_key as ensure_vapid_key
from gateway.trust.base64url import b64u_decode, b64u_encode
from gateway.trust.seal import Sealer
from groundwork.files import PUBLIC, write_file
from store.checkpoint import CheckpointSigner
from store.db import Store

CONFIG_NAME = "threshold.toml"
FILES = (CONFIG_NAME, "gateway.key", "tls.crt", "tls.key", "threshold.db")


async def _create_database(path: Path, key: SigningKey, gateway_id: str, owner: bytes) -> None:
    # Sealed from the very first entry: an unsealed one would reach the cloud in clear.
    store = await Store.open(path, signer=CheckpointSigner(key, gateway_id), seal=Sealer(owner))
    try:
        await store.append("gateway.initialized", {"gateway": gateway_id})
        await store.checkpoint()
    finally:
        await store.close()


@dataclass(frozen=True, slots=True)
class InitResult:
    config_path: Path
    gateway_id: str
    public_key: str
    tls_fingerprint: str


def parse_door_arg(text: str) -> DoorConfig:
    name, sep, spec = text.partition("=")
    if not sep or not name:
        raise UsageError(
            f"--door {text!r}: expected NAME=LOCK (LOCK is sim, sim-switchbot, nuki:ADDRESS "
            "or switchbot:ADDRESS)"
        )
    try:
        return parse_lock_spec(spec, name)
    except Exception as exc:
        raise UsageError(f"--door {text!r}: {exc}") from None


def init_gateway(
    directory: Path,
    *,
    owner_pub: str,
    gateway_id: str | None = None,
    timezone: str = "UTC",
    doors: tuple[DoorConfig, ...] = (DoorConfig("front", "sim"),),
    camera_url: str | None = None,
    bind: str = "127.0.0.1:8443",
    allow_without_camera: bool = False,
) -> InitResult:
    """Create every file of a new gateway in ``directory`` (which may exist but hold none)."""
    try:
        if len(b64u_decode(owner_pub)) != 32:
            raise ValueError("not 32 bytes")
    except ValueError as exc:
        raise UsageError(f"--owner-pub: not a base64url Ed25519 public key ({exc})") from None
    gateway_id = gateway_id or f"gw-{secrets.token_hex(4)}"
    if not GATEWAY_ID_RE.fullmatch(gateway_id):
        raise UsageError("--gateway-id: 1-63 lowercase letters, digits or '-'")
    try:
        host, _port = parse_bind(bind)
    except Exception as exc:
        raise UsageError(f"--bind: {exc}") from None
    names = [d.name for d in doors]
    if len(set(names)) != len(names):
        raise UsageError("--door: a door name is given twice")

    directory.mkdir(parents=True, exist_ok=True)
    existing = [name for name in FILES if (directory / name).exists()]
    if existing:
        raise UsageError(
            f"{directory}: refusing to overwrite existing {', '.join(existing)}; "
            "choose an empty directory"
        )

    text = render(
        gateway_id=gateway_id,
        owner_pub=owner_pub,
        timezone=timezone,
        bind=bind,
        doors=doors,
        camera_url=camera_url,
        allow_without_camera=allow_without_camera,
    )
    config_path = directory / CONFIG_NAME
    # Validate before writing anything, so a bad --tz or --camera leaves no files behind.
    try:
        parse(tomllib.loads(text), directory)
    except Exception as exc:
        raise UsageError(str(exc)) from None

    signing_key, key_text = new_signing_key_text()
    write_file(directory / "gateway.key", key_text.encode("ascii"))
    # The household issuer's key (visitors' tickets); the owner certifies it later with
    # threshold owner household-issuer --certify (the root key is not on the gateway).
    ensure_household_key(directory)
    # The VAPID key: pushes to the owner's devices are signed with it (docs/owner-app.md).
    ensure_vapid_key(directory / "vapid.key")
    key_pem = new_key_pem()
    cert_pem = make_certificate(
        key_pem, gateway_id, host_names(gateway_id, host), datetime.now(UTC)
    )
    write_file(directory / "tls.key", key_pem)
    write_file(directory / "tls.crt", cert_pem, mode=PUBLIC)
    write_file(config_path, text.encode("utf-8"), mode=PUBLIC)
    config = load(config_path)
    public = bytes(signing_key.verify_key)
    asyncio.run(_create_database(config.database, signing_key, gateway_id, config.owner_public_key))
    return InitResult(
        config_path=config_path,
        gateway_id=gateway_id,
        public_key=b64u_encode(public),
        tls_fingerprint=tls_fingerprint(directory / "tls.crt"),
    )
