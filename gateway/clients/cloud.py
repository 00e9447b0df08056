"""The small HTTP client the cloud commands share: signed owner reads, receipt upload.

A thin shell over aiohttp around the pure modules (``cloud.wire``, ``gateway.clients.owner_log``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from cloud.errors import CloudError
from cloud.signed_request import OWNER, sign_request
from cloud.wire import checkpoint_from_json, unb64
from gateway.clients.owner_log import WitnessedCheckpoint
from gateway.errors import UsageError
from gateway.trust.base64url import b64u_decode

TIMEOUT = aiohttp.ClientTimeout(total=60)
PAGE = 2000


class CloudUnavailable(CloudError):
    code = "cloud_unavailable"


def read_signing_key(path: str) -> SigningKey:
    """An Ed25519 key file: base64url of the 32-byte seed (or of the 64-byte secret key)."""
    try:
        text = Path(path).read_text("ascii").strip()
        raw = b64u_decode(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot read key file {path}: {exc}") from None
    if len(raw) not in (32, 64):
        raise UsageError(f"{path} does not hold an Ed25519 secret key")
    key = SigningKey(raw[:32])
    if len(raw) == 64 and raw[32:] != bytes(key.verify_key):
        raise UsageError(f"{path}: the public half does not match the seed")
    return key


def parse_public_key(text: str) -> bytes:
    """A public key given as base64url text, or the path of a file holding it."""
    candidate = Path(text)
    if candidate.is_file():
        text = candidate.read_text("ascii").strip()
    try:
        raw = b64u_decode(text.strip())
    except ValueError:
        raise UsageError("a public key is base64url text of 32 bytes") from None
    if len(raw) != 32:
        raise UsageError("a public key is 32 bytes")
    return raw


async def owner_get(session: aiohttp.ClientSession, base: str, owner: SigningKey, path: str) -> Any:
    headers = sign_request(owner, OWNER, "GET", path, b"", int(time.time()))
    try:
        async with session.get(base.rstrip("/") + path, headers=headers) as response:
            data = await response.json(content_type=None)
            if response.status != 200:
                detail = data.get("detail") if isinstance(data, dict) else ""
                raise CloudUnavailable(f"the relay answered {response.status}: {detail}")
            return data
    except (aiohttp.ClientError, OSError, TimeoutError, json.JSONDecodeError) as exc:
        raise CloudUnavailable(f"cannot read from the relay: {exc}") from None


async def owner_post(
    session: aiohttp.ClientSession, base: str, owner: SigningKey, path: str, body: bytes
) -> Any:
    headers = sign_request(owner, OWNER, "POST", path, body, int(time.time()))
    headers["Content-Type"] = "application/json"
    try:
        async with session.post(base.rstrip("/") + path, data=body, headers=headers) as response:
            data = await response.json(content_type=None)
            if response.status not in (200, 201):
                raise CloudUnavailable(f"the relay answered {response.status}: {data}")
            return data
    except (aiohttp.ClientError, OSError, TimeoutError, json.JSONDecodeError) as exc:
        raise CloudUnavailable(f"cannot post to the relay: {exc}") from None


async def download_log(
    session: aiohttp.ClientSession, base: str, owner: SigningKey, gateway_id: str
) -> tuple[list[tuple[int, bytes]], dict[str, Any], list[dict[str, Any]]]:
    """(sealed entries, the checkpoints document, alarms), paging through the entries."""
    prefix = f"/v1/owner/gateways/{gateway_id}"
    entries: list[tuple[int, bytes]] = []
    while True:
        page = await owner_get(
            session, base, owner, f"{prefix}/entries?since={len(entries)}&limit={PAGE}"
        )
        rows = page.get("entries", [])
        for row in rows:
            entries.append((int(row["index"]), unb64(row["sealed"], "sealed entry")))
        if len(rows) < PAGE:
            break
    checkpoints = await owner_get(session, base, owner, f"{prefix}/checkpoints")
    alarms = (await owner_get(session, base, owner, f"{prefix}/alarms")).get("alarms", [])
    return entries, checkpoints, alarms


def witnessed_from(document: dict[str, Any]) -> list[WitnessedCheckpoint]:
    result = []
    for item in document.get("checkpoints", []):
        cosig = item.get("cosignature")
        result.append(
            WitnessedCheckpoint(
                checkpoint_from_json(item),
                str(item.get("source")),
                None if cosig is None else unb64(cosig, "cosignature"),
            )
        )
    return result
