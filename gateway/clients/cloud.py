"""The small HTTP client the cloud commands share: signed owner reads, receipt upload.

A thin shell over aiohttp around the pure modules (``cloud.wire``, ``gateway.clients.owner_log``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TypeGuard

import aiohttp
from nacl.signing import SigningKey

from cloud.errors import CloudError
from cloud.signed_request import OWNER, sign_request
from cloud.wire import MAX_INT, MalformedMessage, checkpoint_from_json, unb64
from gateway.clients.owner_log import WitnessedCheckpoint
from gateway.errors import UsageError
from gateway.trust.base64url import b64u_decode

TIMEOUT = aiohttp.ClientTimeout(total=60)
PAGE = 2000
#: The year 9999 in Unix milliseconds: a later alarm time is no date the CLI can print.
MAX_TIME_MS = 253_402_300_799_999


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
    """(sealed entries, the checkpoints document, alarms), paging through the entries. Each
    document is read strictly (:func:`entries_page`, :func:`checkpoints_document`,
    :func:`alarms_from`): a relay is not trusted, so what it sends either has the shape of the
    protocol or ends the command with :class:`~cloud.wire.MalformedMessage`."""
    prefix = f"/v1/owner/gateways/{gateway_id}"
    entries: list[tuple[int, bytes]] = []
    while True:
        page = await owner_get(
            session, base, owner, f"{prefix}/entries?since={len(entries)}&limit={PAGE}"
        )
        rows = entries_page(page)
        entries.extend(rows)
        if len(rows) < PAGE:
            break
    checkpoints = checkpoints_document(
        await owner_get(session, base, owner, f"{prefix}/checkpoints")
    )
    alarms = alarms_from(await owner_get(session, base, owner, f"{prefix}/alarms"))
    return entries, checkpoints, alarms


# The relay's owner documents, read strictly (pure: tests/fuzz feeds them directly). -----------


def entries_page(page: object) -> list[tuple[int, bytes]]:
    """(index, sealed leaf) of each row of an ``entries`` page."""
    rows = page.get("entries", []) if isinstance(page, dict) else None
    if not isinstance(rows, list) or len(rows) > PAGE:
        raise MalformedMessage("the relay's entries page is not a list of at most 2000 rows")
    out: list[tuple[int, bytes]] = []
    for row in rows:
        index = row.get("index") if isinstance(row, dict) else None
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INT:
            raise MalformedMessage("an entry row has no index from 0 to 2^63-1")
        out.append((index, unb64(row.get("sealed"), "sealed entry")))
    return out


def checkpoints_document(document: object) -> dict[str, Any]:
    """The ``checkpoints`` document, its fields checked (the list by :func:`witnessed_from`)."""
    if not isinstance(document, dict):
        raise MalformedMessage("the relay's checkpoints document is not an object")
    witnessed_from(document)
    for name in ("gateway_key", "relay_key"):
        if document.get(name) is not None:
            unb64(document.get(name), name)
    relay_id = document.get("relay_id")
    if relay_id is not None and not _printable(relay_id):
        raise MalformedMessage("the relay id is not printable ASCII")
    return document


def alarms_from(document: object) -> list[dict[str, Any]]:
    """The relay's alarms, each with a printable ``code`` and ``detail`` and a ``time_ms``."""
    alarms = document.get("alarms", []) if isinstance(document, dict) else None
    if not isinstance(alarms, list):
        raise MalformedMessage("the relay's alarms are not a list")
    for alarm in alarms:
        if not (
            isinstance(alarm, dict)
            and _printable(alarm.get("code"))
            and isinstance(alarm.get("detail"), str)
            and alarm["detail"].isprintable()
            and not isinstance(alarm.get("time_ms"), bool)
            and isinstance(alarm.get("time_ms"), int)
            and 0 <= alarm["time_ms"] <= MAX_TIME_MS
        ):
            raise MalformedMessage("a relay alarm is not a code, a detail and a time")
    return alarms


def witnessed_from(document: dict[str, Any]) -> list[WitnessedCheckpoint]:
    items = document.get("checkpoints", [])
    if not isinstance(items, list):
        raise MalformedMessage("the relay's checkpoints are not a list")
    result = []
    for item in items:
        if not isinstance(item, dict):
            raise MalformedMessage("a witnessed checkpoint is not an object")
        cosig = item.get("cosignature")
        source = item.get("source")
        if not _printable(source):
            raise MalformedMessage("a witnessed checkpoint's source is not printable ASCII")
        result.append(
            WitnessedCheckpoint(
                checkpoint_from_json(item),
                source,
                None if cosig is None else unb64(cosig, "cosignature"),
            )
        )
    return result


def _printable(value: object) -> TypeGuard[str]:
    """Printable ASCII text, so the owner's terminal shows it as it is (no escape codes)."""
    return (
        isinstance(value, str) and 0 < len(value) <= 256 and value.isascii() and value.isprintable()
    )
