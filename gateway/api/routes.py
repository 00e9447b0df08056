"""The LAN API's route table, :data:`ROUTES`: the one source of the router and the spec.

``gateway.api.server`` builds the aiohttp router from this table (each route's handler is
found by its ``name``) and :func:`openapi_document` builds the OpenAPI 3.1 document served at
``/v1/openapi.json``; a test checks the two against each other. Pure data: no handler here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.api.problems import PROBLEM_TYPE, STATUS_TITLES

API_VERSION = "v1"


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

ROUTE_BY_NAME = {route.name: route for route in ROUTES}
STREAMING_PATHS = frozenset(route.path for route in ROUTES if route.streaming)


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
                }
            },
        },
    }
