"""The relay's route table, and the OpenAPI document built from it. Pure.

Every route the relay serves is declared once in :data:`ROUTES`; ``cloud.relay`` builds its
router from this table and serves :func:`openapi_document` at ``/v1/openapi.json``, and a
test checks the router, the table and the document against each other. docs/cloud.md has
the protocol; this is its machine-readable form.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from cloud.signed_request import NONCE_HEADER, PRINCIPAL_HEADER, SIGNATURE_HEADER, TIME_HEADER
from cloud.wire import BATCH_CONTENT_TYPE, MAX_INT

API_VERSION = "v1"
PROBLEM_TYPE = "application/problem+json"

STATUS_TITLES: dict[int, str] = {
    200: "OK",
    201: "Created",
    400: "Malformed request",
    401: "Signature missing, stale, replayed or wrong",
    404: "No such route",
    405: "Method not allowed",
    409: "Refused by the witness checks (the finding is the code)",
    413: "Request body too large",
    429: "Too many requests (Retry-After says when to retry)",
    503: "Not ready (the relay's database does not answer)",
}


class Caller(enum.Enum):
    """Who may call a route: anyone, or a request signed as that principal."""

    ANYONE = "anyone"
    GATEWAY = "gateway"
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    name: str
    summary: str
    caller: Caller
    responses: tuple[int, ...]
    query: tuple[Query, ...] = ()
    #: The request body's media type and schema; None for a route that takes no body.
    body: tuple[str, dict[str, Any]] | None = None


_STRING = {"type": "string"}
_BASE64 = {"type": "string", "contentEncoding": "base64"}
_INDEX = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
_OBJECT = {"type": "object"}

_CHECKPOINT = {
    "type": "object",
    "properties": {
        "origin": _STRING,
        "tree_size": _INDEX,
        "root_hash": _BASE64,
        "time_ms": _INDEX,
        "signature": _BASE64,
    },
    "required": ["origin", "tree_size", "root_hash", "time_ms", "signature"],
}
_PROOF = {"type": "array", "items": _BASE64, "maxItems": 128}
_RECEIPT = {
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "gateway": _STRING,
                "checkpoint": _CHECKPOINT,
                "entries": {
                    "type": "array",
                    "maxItems": 64,
                    "items": {
                        "type": "object",
                        "properties": {"index": _INDEX, "leaf": _BASE64, "proof": _PROOF},
                        "required": ["index", "leaf", "proof"],
                    },
                },
            },
            "required": ["gateway", "checkpoint", "entries"],
        },
        {
            "description": "The gateway's `done` receipt as is (one entry).",
            "type": "object",
            "properties": {
                "index": _INDEX,
                "leaf_bytes": _BASE64,
                "inclusion_proof": _PROOF,
                "checkpoint": _CHECKPOINT,
            },
            "required": ["index", "leaf_bytes", "inclusion_proof", "checkpoint"],
        },
    ]
}
_SINCE = Query("since", _INDEX, "the first entry index to return")
_LIMIT = Query("limit", {**_INDEX, "maximum": 2000}, "at most this many entries (<= 2000)")

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/openapi.json", "openapi", "This OpenAPI document.", Caller.ANYONE, (200,)),
    Route(
        "GET",
        "/healthz",
        "healthz",
        "Liveness: the relay process answers (it does not ask the database).",
        Caller.ANYONE,
        (200,),
    ),
    Route(
        "GET",
        "/readyz",
        "readyz",
        "Readiness: the relay's database answers; 503 not_ready when it does not.",
        Caller.ANYONE,
        (200, 503),
    ),
    Route(
        "GET",
        "/v1/time",
        "time",
        "The relay's Ed25519-signed time, bound to the caller's nonce.",
        Caller.ANYONE,
        (200, 400),
        query=(
            Query(
                "nonce",
                {"type": "string", "pattern": "^[A-Za-z0-9]{16,64}$"},
                "16 to 64 ASCII letters or digits, chosen by the caller",
                required=True,
            ),
        ),
    ),
    Route(
        "POST",
        "/v1/receipts",
        "receipt",
        "A courier's receipt, kept as a witnessed checkpoint. Unknown and registered gateways"
        " are answered alike; limited per client address and overall.",
        Caller.ANYONE,
        (200, 400, 409, 413, 429),
        body=("application/json", _RECEIPT),
    ),
    Route(
        "POST",
        "/v1/gateways/{gw}/entries",
        "upload",
        "An upload batch; answers the held size and the relay's cosignature.",
        Caller.GATEWAY,
        (200, 400, 401, 409, 413),
        body=(BATCH_CONTENT_TYPE, {"type": "string", "format": "binary"}),
    ),
    Route(
        "GET",
        "/v1/gateways/{gw}/mailbox",
        "mailbox",
        "The owner's sealed mail to this gateway, in order.",
        Caller.GATEWAY,
        (200, 400, 401),
        query=(Query("after", _INDEX, "the last mail id already read"),),
    ),
    Route(
        "GET",
        "/v1/owner/gateways/{gw}/entries",
        "owner_entries",
        "The sealed entries the relay holds.",
        Caller.OWNER,
        (200, 400, 401),
        query=(_SINCE, _LIMIT),
    ),
    Route(
        "GET",
        "/v1/owner/gateways/{gw}/checkpoints",
        "owner_checkpoints",
        "Every witnessed checkpoint, with the relay's cosignatures.",
        Caller.OWNER,
        (200, 401),
    ),
    Route(
        "GET",
        "/v1/owner/gateways/{gw}/alarms",
        "owner_alarms",
        "The alarms the witness checks raised for this gateway.",
        Caller.OWNER,
        (200, 401),
    ),
    Route(
        "POST",
        "/v1/owner/gateways/{gw}/mailbox",
        "owner_post_mail",
        "Post one item of mail, sealed to the gateway's key.",
        Caller.OWNER,
        (201, 400, 401, 413),
        body=(
            "application/json",
            {
                "type": "object",
                "properties": {"sealed": _BASE64},
                "required": ["sealed"],
            },
        ),
    ),
)


def _response(code: int) -> dict[str, Any]:
    media = PROBLEM_TYPE if code >= 400 else "application/json"
    schema = {"$ref": "#/components/schemas/Problem"} if code >= 400 else _OBJECT
    answer: dict[str, Any] = {
        "description": STATUS_TITLES.get(code, "Error"),
        "content": {media: {"schema": schema}},
    }
    if code == 429:
        answer["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return answer


def _operation(route: Route) -> dict[str, Any]:
    responses = {str(code): _response(code) for code in route.responses}
    # Anything else (a 404 for an unknown route, a 405, a 500) is problem+json too.
    responses["default"] = {
        "description": "Any other error",
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "responses": responses,
    }
    params = [
        {"name": seg[1:-1], "in": "path", "required": True, "schema": _STRING}
        for seg in route.path.split("/")
        if seg.startswith("{")
    ]
    params += [
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "schema": q.schema,
            "description": q.description,
        }
        for q in route.query
    ]
    if params:
        op["parameters"] = params
    if route.body is not None:
        media, schema = route.body
        op["requestBody"] = {"required": True, "content": {media: {"schema": schema}}}
    if route.caller is not Caller.ANYONE:
        op["security"] = [{f"{route.caller.value}Signature": []}]
    return op


def openapi_document(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    signed = (
        f"Ed25519 request signature (docs/cloud.md): {PRINCIPAL_HEADER} ({{principal}}), "
        f"{TIME_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER}."
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Threshold reference relay", "version": API_VERSION},
        "paths": paths,
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": _STRING,
                        "title": _STRING,
                        "status": {"type": "integer"},
                        "detail": _STRING,
                        "code": _STRING,
                    },
                    "required": ["type", "title", "status", "detail", "code"],
                }
            },
            "securitySchemes": {
                f"{caller.value}Signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": signed.format(
                        principal="owner" if caller is Caller.OWNER else "gateway:<id>"
                    ),
                }
                for caller in (Caller.GATEWAY, Caller.OWNER)
            },
        },
    }
