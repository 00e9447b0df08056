"""Request bodies: read once under the size cap, then parsed strictly against a route's schema.

A body is JSON object of string fields, UTF-8, with no duplicate and no unknown key; binary
values are unpadded base64url. Anything else is a ``400 bad_request`` problem.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.api.context import CTX, RAW_BODY
from gateway.api.problems import Problem
from gateway.api.routes import Route
from gateway.errors import GatewayError
from gateway.trust import paseto
from gateway.trust.base64url import b64u_decode
from gateway.trust.claims import decode_object


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


async def json_body(request: web.Request, route: Route) -> dict[str, Any]:
    return parse_body(await read_body(request), route)


def parse_body(raw: bytes, route: Route) -> dict[str, Any]:
    """A body's JSON object, checked against ``route``'s schema; a ``400`` problem otherwise
    (pure, so tests/fuzz feeds it directly)."""
    if not raw:
        raise Problem(400, "bad_request", "a JSON object body is required")
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except RecursionError:
        # Nesting deeper than the parser can follow is refused like any malformed body; no
        # body of this API nests at all.
        raise Problem(400, "bad_request", "malformed JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "bad_request", f"malformed JSON ({exc})") from None
    if not isinstance(body, dict):
        raise Problem(400, "bad_request", "the body must be a JSON object")
    schema = route.request_schema or {}
    allowed = set(schema.get("properties", {}))
    for key in schema.get("required", []):
        if key not in body:
            raise Problem(400, "bad_request", f"missing field {key!r}")
    for key, value in body.items():
        if key not in allowed:
            raise Problem(400, "bad_request", f"unknown field {key!r}")
        if not isinstance(value, str):
            raise Problem(400, "bad_request", f"field {key!r} must be a string")
        if not _is_unicode(value):
            # JSON can spell a lone surrogate ("\\ud800"); it is no text, and encoding it
            # later (a package code's hash, a log line) raised past every handler: a 500.
            raise Problem(400, "bad_request", f"field {key!r} is not valid Unicode")
    return body


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def read_body(request: web.Request) -> bytes:
    """The raw body, read once (the body middleware reads it before admission)."""
    cached: bytes | None = request.get(RAW_BODY)
    if cached is not None:
        return cached
    ctx = request.app[CTX]
    if request.content_length is not None and request.content_length > ctx.max_body_bytes:
        raise Problem(413, "payload_too_large", f"bodies are limited to {ctx.max_body_bytes} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Problem(
            413, "payload_too_large", f"bodies are limited to {ctx.max_body_bytes} bytes"
        ) from None
    request[RAW_BODY] = raw
    return raw


def b64u_field(body: dict[str, Any], key: str, length: int) -> bytes:
    try:
        raw = b64u_decode(body[key])
    except ValueError:
        raise Problem(400, "bad_request", f"{key} must be unpadded base64url") from None
    if len(raw) != length:
        raise Problem(400, "bad_request", f"{key} must encode {length} bytes")
    return raw


def peek_ticket_id(token: str) -> str:
    """The unverified ``jti`` of a token, for rate limiting only (never for a decision).

    The payload is read with the trust layer's strict decoder (bounded nesting), the same
    that reads it once the signature is checked, so a hostile payload fails here as it would
    there: as a malformed token, keyed by its text.
    """
    try:
        claims = decode_object(paseto.peek(token)[0])
    except GatewayError:
        return "token:" + str(hash(token))
    jti = claims.get("jti")
    if isinstance(jti, str) and 0 < len(jti) <= 128:
        return "jti:" + jti
    return "token:" + str(hash(token))
