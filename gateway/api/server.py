"""The LAN API (aiohttp): courier routes, owner routes, problem+json errors (docs/api.md).

Every route is declared once in :data:`ROUTES`; the router and the OpenAPI document served at
``/v1/openapi.json`` are both built from that table, and a test checks them against each
other. Every error is an RFC 9457 ``application/problem+json`` body with a stable ``code``;
the outermost middleware turns anything unexpected into a bare 500 ``internal_error``, so no
traceback ever reaches a client (the log keeps it).

Owner routes (``/v1/owner/...``) are authenticated by an owner-key request signature
(:mod:`gateway.trust.owner_request`); a courier's ticket or proof is never accepted there.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from ble.errors import LockError
from gateway.access.admission import AccessRequest
from gateway.access.errors import AccessCode, AccessRefused, DocumentRejected
from gateway.access.service import AccessService
from gateway.access.session import AuditValue
from gateway.api.ratelimit import RateLimiter
from gateway.trust.base64url import b64u_decode, b64u_encode
from gateway.trust.owner_request import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIME_HEADER,
    OwnerAuthError,
    OwnerRequestVerifier,
)
from store.errors import StoreError
from video.camera import Camera
from video.errors import CameraError, CameraUnavailable, LiveViewBusy
from video.liveview import mjpeg_handler

log = logging.getLogger("threshold.api")

API_VERSION = "v1"
PROBLEM_TYPE = "application/problem+json"
MAX_TOKEN_CHARS = 4096
MAX_PACKAGE_CODE = 256

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The stable problem codes, with their HTTP status and a title (docs/api.md lists them).
STATUS_TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


#: The HTTP status of every access code (the access layer itself knows no transport). An
#: owner's document that does not verify (DocumentRejected) is a 400 whatever its code.
ACCESS_STATUS: dict[AccessCode, int] = {
    AccessCode.BAD_TOKEN: 403,
    AccessCode.UNKNOWN_KEY: 403,
    AccessCode.BAD_SIGNATURE: 403,
    AccessCode.MALFORMED_CLAIMS: 403,
    AccessCode.CLOCK_UNTRUSTED: 403,
    AccessCode.REVOKED: 403,
    AccessCode.WRONG_GATEWAY: 403,
    AccessCode.WRONG_DOOR: 403,
    AccessCode.CERTIFICATE_EXCEEDED: 403,
    AccessCode.NOT_YET_VALID: 403,
    AccessCode.EXPIRED: 403,
    AccessCode.OUTSIDE_SCHEDULE: 403,
    AccessCode.USES_EXHAUSTED: 403,
    AccessCode.UNKNOWN_CHALLENGE: 403,
    AccessCode.CHALLENGE_EXPIRED: 403,
    AccessCode.BAD_PROOF: 403,
    AccessCode.WRONG_SESSION: 400,
    AccessCode.APPROVAL_DECLINED: 403,
    AccessCode.STALE_REVOCATIONS: 400,
    AccessCode.PACKAGE_MISMATCH: 403,
    AccessCode.CAMERA_UNAVAILABLE: 403,
    AccessCode.APPROVAL_DENIED: 403,
    AccessCode.GATEWAY_RESTARTED: 403,
    AccessCode.DENIED: 403,
    AccessCode.DOOR_BUSY: 409,
    AccessCode.LOCK_UNAVAILABLE: 503,
    AccessCode.STORAGE_UNAVAILABLE: 503,
    AccessCode.NOT_FOUND: 404,
    AccessCode.BAD_REQUEST: 400,
    AccessCode.NOT_AWAITING_APPROVAL: 409,
}


class Problem(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_response(status: int, code: str, detail: str, **extra: Any) -> web.Response:
    body = {
        "type": f"urn:threshold:problem:{code}",
        "title": STATUS_TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, int(extra["retry_after"] + 0.999)))
    return web.json_response(body, status=status, content_type=PROBLEM_TYPE, headers=headers)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    name: str
    summary: str
    owner: bool = False
    request_schema: dict[str, Any] | None = None
    responses: tuple[int, ...] = (200,)
    media_type: str = "application/json"  # of the success response
    streaming: bool = False  # a long-lived response: not counted against admission
    #: Authenticated by the owner app's session cookie and CSRF token (gateway/api/app_routes).
    app_session: bool = False


@dataclass(slots=True)
class ApiContext:
    service: AccessService
    gateway_id: str
    public_key: str
    tls_fingerprint: str | None
    owner_verifier: OwnerRequestVerifier
    client_limiter: RateLimiter
    ticket_limiter: RateLimiter
    max_body_bytes: int
    #: The camera, for the owner's live view and snapshot; None when none is configured.
    camera: Camera | None = None
    #: Requests handled at once; the rest wait their turn (FIFO) outside the event loop's
    #: ready queue, so a flood cannot starve the lock's Bluetooth exchange of loop turns.
    admission: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    wall_clock: Callable[[], float] = time.time


CTX: web.AppKey[ApiContext] = web.AppKey("threshold_ctx", ApiContext)
ARRIVED: web.RequestKey[float] = web.RequestKey("threshold_arrived", float)
RAW_BODY: web.RequestKey[bytes] = web.RequestKey("threshold_raw_body", bytes)


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


_S = {"type": "string"}
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/info", "info", "Gateway identity, doors and API version."),
    Route("GET", "/v1/openapi.json", "openapi", "This OpenAPI document."),
    Route(
        "POST",
        "/v1/challenges",
        "challenge",
        "A fresh single-use 32-byte nonce to sign (valid about 10 s).",
        responses=(201, 429, 503),
    ),
    Route(
        "POST",
        "/v1/access",
        "access",
        "Present a ticket with a proof of possession; 201 open, 202 awaiting the owner.",
        request_schema=_obj(
            {
                "ticket": _S,
                "door": _S,
                "nonce": _S,
                "proof": _S,
                "package_code": _S,
                "revocations": _S,
            },
            ["ticket", "door", "nonce", "proof"],
        ),
        responses=(201, 202, 400, 403, 409, 413, 429, 503),
    ),
    Route(
        "GET", "/v1/access/{session}", "session", "An access session's state.", responses=(200, 404)
    ),
    Route(
        "POST",
        "/v1/access/{session}/done",
        "done",
        "The visitor is out: a fresh proof (action 'done') by the same holder; relocks.",
        request_schema=_obj({"nonce": _S, "proof": _S}, ["nonce", "proof"]),
        responses=(200, 400, 403, 404),
    ),
    Route(
        "GET",
        "/v1/owner/events",
        "owner_events",
        "Audit log entries (query: since, limit).",
        owner=True,
        responses=(200, 401),
    ),
    Route(
        "GET",
        "/v1/owner/sessions",
        "owner_sessions",
        "Recent and open access sessions.",
        owner=True,
        responses=(200, 401),
    ),
    Route(
        "POST",
        "/v1/owner/approvals",
        "owner_approvals",
        "An owner-signed approval (or refusal) of a session awaiting approval.",
        owner=True,
        request_schema=_obj({"approval": _S}, ["approval"]),
        responses=(200, 400, 401, 404, 409),
    ),
    Route(
        "POST",
        "/v1/owner/revocations",
        "owner_revocations",
        "An owner-signed revocation list (refused if older than the one held).",
        owner=True,
        request_schema=_obj({"revocations": _S}, ["revocations"]),
        responses=(200, 400, 401),
    ),
    Route(
        "POST",
        "/v1/owner/lock",
        "owner_lock",
        "Lock or unlock a door by hand, recorded as the owner's act.",
        owner=True,
        request_schema=_obj(
            {"door": _S, "action": {"type": "string", "enum": ["lock", "unlock"]}},
            ["door", "action"],
        ),
        responses=(200, 400, 401, 404, 409, 503),
    ),
    Route(
        "GET",
        "/v1/owner/camera/live",
        "owner_live_view",
        "The camera live, as MJPEG (multipart/x-mixed-replace, at most 5 fps, 2 viewers).",
        owner=True,
        responses=(200, 401, 429, 503),
        media_type="multipart/x-mixed-replace",
        streaming=True,
    ),
    Route(
        "GET",
        "/v1/owner/camera/snapshot",
        "owner_snapshot",
        "One JPEG of the camera's newest picture.",
        owner=True,
        responses=(200, 401, 503),
        media_type="image/jpeg",
    ),
)


def _success_schema(route: Route) -> dict[str, Any]:
    if route.media_type == "application/json":
        return {"type": "object"}
    return {"type": "string", "format": "binary"}


def openapi_document(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    problem = {"$ref": "#/components/schemas/Problem"}
    paths: dict[str, Any] = {}
    for route in routes:
        op: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "responses": {
                str(code): {
                    "description": STATUS_TITLES.get(code, "OK"),
                    "content": {
                        PROBLEM_TYPE if code >= 400 else route.media_type: {
                            "schema": problem if code >= 400 else _success_schema(route)
                        }
                    },
                }
                for code in route.responses
            },
        }
        params = [seg[1:-1] for seg in route.path.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": _S} for p in params
            ]
        if route.request_schema is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": route.request_schema}},
            }
        if route.owner:
            op["security"] = [{"ownerSignature": []}]
        if route.app_session:
            op["security"] = [{"appSession": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Threshold gateway LAN API", "version": API_VERSION},
        "paths": paths,
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": _S,
                        "title": _S,
                        "status": {"type": "integer"},
                        "detail": _S,
                        "code": _S,
                    },
                    "required": ["type", "title", "status", "code"],
                }
            },
            "securitySchemes": {
                "ownerSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Threshold-Owner-Signature",
                    "description": "Ed25519 owner signature; see docs/api.md.",
                },
                "appSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "__Host-threshold-session",
                    "description": "The owner app's session (passkey sign-in), with the "
                    "X-CSRF-Token header on every POST; see docs/owner-app.md.",
                },
            },
        },
    }


# ---------------------------------------------------------------------------------------------
# Request parsing.


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


async def _json_body(request: web.Request, route: Route) -> dict[str, Any]:
    raw = request.get(RAW_BODY)
    if raw is None:
        raw = await _read_body(request)
    if not raw:
        raise Problem(400, "bad_request", "a JSON object body is required")
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
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
    return body


async def _read_body(request: web.Request) -> bytes:
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


def _b64u_field(body: dict[str, Any], key: str, length: int) -> bytes:
    try:
        raw = b64u_decode(body[key])
    except ValueError:
        raise Problem(400, "bad_request", f"{key} must be unpadded base64url") from None
    if len(raw) != length:
        raise Problem(400, "bad_request", f"{key} must encode {length} bytes")
    return raw


def peek_ticket_id(token: str) -> str:
    """The unverified ``jti`` of a token, for rate limiting only (never for a decision)."""
    try:
        parts = token.split(".")
        payload = parts[2]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))[:-64]
        jti = json.loads(raw).get("jti")
        if isinstance(jti, str) and 0 < len(jti) <= 128:
            return "jti:" + jti
    except (IndexError, ValueError, binascii.Error, AttributeError, UnicodeDecodeError):
        pass
    return "token:" + str(hash(token))


# ---------------------------------------------------------------------------------------------
# Handlers.


async def info(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    return web.json_response(
        {
            "gateway_id": ctx.gateway_id,
            "public_key": ctx.public_key,
            "tls_fingerprint": ctx.tls_fingerprint,
            "doors": sorted(ctx.service.doors),
            "api_version": API_VERSION,
        }
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[ROUTE_TABLE]))


async def challenge(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    record = await ctx.service.issue_challenge()
    return web.json_response(
        {
            "nonce": b64u_encode(record.nonce),
            "expires_at": record.expires_at.isoformat().replace("+00:00", "Z"),
        },
        status=201,
    )


async def access(request: web.Request) -> web.Response:
    arrived = request[ARRIVED]
    ctx = request.app[CTX]
    body = await _json_body(request, _ROUTE_BY_NAME["access"])
    token = body["ticket"]
    if len(token) > MAX_TOKEN_CHARS:
        raise Problem(400, "bad_token", f"tickets are at most {MAX_TOKEN_CHARS} characters")
    key = peek_ticket_id(token)
    if not ctx.ticket_limiter.allow(key, time.monotonic()):
        raise Problem(
            429,
            "rate_limited",
            "too many presentations of this ticket",
            retry_after=ctx.ticket_limiter.retry_after(key),
        )
    package_code = body.get("package_code")
    if package_code is not None and len(package_code) > MAX_PACKAGE_CODE:
        raise Problem(400, "bad_request", "package_code is too long")
    req = AccessRequest(
        ticket=token,
        door=body["door"],
        nonce=_b64u_field(body, "nonce", 32),
        proof=_b64u_field(body, "proof", 64),
        package_code=package_code,
        revocations=body.get("revocations"),
    )
    view = await ctx.service.request_access(req, arrived)
    status = 202 if view.state == "awaiting_approval" else 201
    return web.json_response(view.to_json(), status=status)


async def session(request: web.Request) -> web.Response:
    view = request.app[CTX].service.view(request.match_info["session"])
    if view is None:
        raise Problem(404, "not_found", "no such session")
    return web.json_response(view.to_json())


async def done(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await _json_body(request, _ROUTE_BY_NAME["done"])
    view = await ctx.service.done(
        request.match_info["session"],
        _b64u_field(body, "nonce", 32),
        _b64u_field(body, "proof", 64),
    )
    out = view.to_json()
    if view.state == "closed":
        out["receipt"] = await ctx.service.receipt(view.id)
    return web.json_response(out)


async def owner_events(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    try:
        since = int(request.query.get("since", "0"))
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise Problem(400, "bad_request", "since and limit must be integers") from None
    if since < 0 or not 1 <= limit <= 1000:
        raise Problem(400, "bad_request", "since >= 0 and 1 <= limit <= 1000")
    events = await ctx.service.events(since, limit)
    return web.json_response({"events": events})


async def owner_sessions(request: web.Request) -> web.Response:
    views = [view.to_json() for view in request.app[CTX].service.sessions()]
    return web.json_response({"sessions": views})


async def owner_approvals(request: web.Request) -> web.Response:
    body = await _json_body(request, _ROUTE_BY_NAME["owner_approvals"])
    view = await request.app[CTX].service.approve(body["approval"])
    return web.json_response(view.to_json())


async def owner_revocations(request: web.Request) -> web.Response:
    body = await _json_body(request, _ROUTE_BY_NAME["owner_revocations"])
    seq = await request.app[CTX].service.set_revocations(body["revocations"])
    return web.json_response({"seq": seq})


async def owner_lock(request: web.Request) -> web.Response:
    body = await _json_body(request, _ROUTE_BY_NAME["owner_lock"])
    status = await request.app[CTX].service.owner_lock(body["door"], body["action"])
    return web.json_response(
        {"door": body["door"], "lock": status.lock.value, "door_state": status.door.value}
    )


async def owner_snapshot(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    camera = ctx.camera
    if camera is None:
        raise CameraUnavailable("no camera is configured")
    jpeg = await camera.snapshot()
    # Looking into the home is itself an event of the household's log; no entry, no picture.
    await ctx.service.ledger.record("camera.snapshot_viewed", {"size_bytes": len(jpeg)})
    return web.Response(
        body=jpeg,
        content_type="image/jpeg",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _audited_live_view(ctx: ApiContext) -> Handler:
    """The MJPEG live view, with an audit entry before the first picture and one at the end.

    If the opening entry cannot be written (the store is down), nothing is streamed: the
    household's log shows every time someone looked into the home.
    """
    assert ctx.camera is not None

    async def opened() -> None:
        await ctx.service.ledger.record("camera.live_view_started", {})

    async def closed(frames: int, seconds: float) -> None:
        body: dict[str, AuditValue] = {"frames": frames, "duration_ms": round(seconds * 1000)}
        try:
            await ctx.service.ledger.record("camera.live_view_ended", body)
        except StoreError as exc:
            log.error("audit entry camera.live_view_ended not recorded (%s)", exc.code)

    return mjpeg_handler(ctx.camera, on_open=opened, on_close=closed)


async def _no_camera(request: web.Request) -> web.StreamResponse:
    raise CameraUnavailable("no camera is configured")


_HANDLERS: dict[str, Handler] = {
    "info": info,
    "openapi": openapi,
    "challenge": challenge,
    "access": access,
    "session": session,
    "done": done,
    "owner_events": owner_events,
    "owner_sessions": owner_sessions,
    "owner_approvals": owner_approvals,
    "owner_revocations": owner_revocations,
    "owner_lock": owner_lock,
    "owner_live_view": _no_camera,  # replaced by build_app when a camera is configured
    "owner_snapshot": owner_snapshot,
}
_ROUTE_BY_NAME = {route.name: route for route in ROUTES}


# ---------------------------------------------------------------------------------------------
# Middlewares, outermost first.


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[ARRIVED] = time.perf_counter()
    try:
        return await handler(request)
    except Problem as p:
        return problem_response(p.status, p.code, p.detail, **p.extra)
    except DocumentRejected as r:
        return problem_response(400, r.code, r.message)
    except AccessRefused as r:
        return problem_response(ACCESS_STATUS[r.access_code], r.code, r.message)
    except web.HTTPRequestEntityTooLarge:
        return problem_response(413, "payload_too_large", "request body too large")
    except web.HTTPNotFound:
        return problem_response(404, "not_found", f"no route {request.method} {request.path}")
    except web.HTTPMethodNotAllowed:
        return problem_response(405, "method_not_allowed", f"{request.method} is not allowed here")
    except web.HTTPException as exc:
        code = "bad_request" if exc.status == 400 else f"http_{exc.status}"
        return problem_response(exc.status, code, exc.reason)
    except LiveViewBusy as exc:
        return problem_response(429, exc.code, exc.message, retry_after=5)
    except CameraError as exc:
        return problem_response(503, exc.code, exc.message)
    except StoreError as exc:
        log.error("store error on %s %s: %s", request.method, request.path, exc.code)
        return problem_response(
            503, "storage_unavailable", f"the gateway's store failed ({exc.code})"
        )
    except LockError as exc:
        log.error("lock error on %s %s: %s", request.method, request.path, exc.code)
        return problem_response(503, "lock_unavailable", f"the lock failed ({exc.code})")
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return problem_response(500, "internal_error", "the gateway hit an internal error")


@web.middleware
async def admission(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in request.app[STREAMING_PATHS]:
        # A live view lasts as long as the owner watches: holding an admission slot for it
        # would starve the courier routes. Its own viewer limit bounds it instead.
        return await handler(request)
    async with request.app[CTX].admission:
        return await handler(request)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CTX]
    client = request.remote or "unknown"
    if not ctx.client_limiter.allow(client, time.monotonic()):
        raise Problem(
            429,
            "rate_limited",
            "too many requests from this address",
            retry_after=ctx.client_limiter.retry_after(client),
        )
    return await handler(request)


@web.middleware
async def owner_signature(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/owner/"):
        return await handler(request)
    ctx = request.app[CTX]
    raw = await _read_body(request)
    present = {
        name: value
        for name in (TIME_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
        if (value := request.headers.get(name)) is not None
    }
    try:
        ctx.owner_verifier.verify(request.method, request.raw_path, raw, present, ctx.wall_clock())
    except OwnerAuthError as exc:
        raise Problem(401, "unauthorized", exc.message) from None
    return await handler(request)


# ---------------------------------------------------------------------------------------------
# Route sets beside the core table: the owner app (gateway/api/app_routes.py). Their routes join
# the one table the router and /v1/openapi.json are both built from; their middlewares run
# inside the core ones (so their errors are problem+json too, and they are rate limited).


@dataclass(frozen=True, slots=True)
class RouteSet:
    routes: tuple[Route, ...]
    handlers: Mapping[str, Handler]
    middlewares: tuple[Middleware, ...] = ()
    install: Callable[[web.Application], None] | None = None


#: The routes this application serves (the core table and every route set's).
ROUTE_TABLE: web.AppKey[tuple[Route, ...]] = web.AppKey("threshold_routes", tuple)
STREAMING_PATHS: web.AppKey[frozenset[str]] = web.AppKey("threshold_streaming", frozenset)
#: The audited live view handler, shared by every route that shows the camera (one viewer
#: limit for the owner's CLI and the app together); None without a camera.
LIVE_VIEW: web.AppKey[Handler | None] = web.AppKey("threshold_live_view", object)  # type: ignore[arg-type]


def build_app(ctx: ApiContext, route_sets: tuple[RouteSet, ...] = ()) -> web.Application:
    middlewares: list[Middleware] = [problems, rate_limit, admission, owner_signature]
    middlewares += [m for rs in route_sets for m in rs.middlewares]
    app = web.Application(
        middlewares=middlewares,
        client_max_size=ctx.max_body_bytes,
        handler_args={"max_field_size": 8190, "max_line_size": 8190},
    )
    app[CTX] = ctx
    handlers = dict(_HANDLERS)
    if ctx.camera is not None:
        handlers["owner_live_view"] = _audited_live_view(ctx)
    app[LIVE_VIEW] = handlers["owner_live_view"] if ctx.camera is not None else None
    table = ROUTES
    for route_set in route_sets:
        table += route_set.routes
        handlers.update(route_set.handlers)
        if route_set.install is not None:
            route_set.install(app)
    app[ROUTE_TABLE] = table
    app[STREAMING_PATHS] = frozenset(route.path for route in table if route.streaming)
    for route in table:
        app.router.add_route(route.method, route.path, handlers[route.name], name=route.name)
    return app
