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
#: The tlog-witness submission and monitoring prefix.
WITNESS_PREFIX = "/v1/witness"
PROBLEM_TYPE = "application/problem+json"

STATUS_TITLES: dict[int, str] = {
    200: "OK",
    201: "Created",
    400: "Malformed request",
    401: "Signature missing, stale, replayed or wrong",
    404: "No such route (or remote name routed by this relay)",
    405: "Method not allowed",
    409: "Refused by the witness checks (the finding is the code)",
    403: "The checkpoint is not signed by the log's trusted key; or the remote name is another"
    " gateway's",
    413: "Request body too large",
    422: "The checkpoint is not consistent with the witness's view of the log",
    429: "Too many requests (Retry-After says when to retry)",
    502: "The DNS provider did not take the challenge record",
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
    #: Answers that are not JSON (or problem+json): status -> (media type, schema).
    media: dict[int, tuple[str, dict[str, Any]]] | None = None
    #: The JSON schema of the success answer (200 or 201).
    answer: dict[str, Any] | None = None


_STRING = {"type": "string"}
_BASE64 = {"type": "string", "contentEncoding": "base64"}
_INDEX = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
_OBJECT = {"type": "object"}

_CHECKPOINT: dict[str, Any] = {
    "description": "docs/audit-log.md, Checkpoints: `note` is a C2SP tlog-checkpoint signed"
    " note; a checkpoint without `note` is threshold-checkpoint/v1 and has `signature`.",
    "type": "object",
    "properties": {
        "format": {"type": "string", "enum": ["tlog-checkpoint", "threshold-checkpoint/v1"]},
        "note": _STRING,
        "origin": _STRING,
        "tree_size": _INDEX,
        "root_hash": _BASE64,
        "time_ms": _INDEX,
        "signature": _BASE64,
    },
    "required": ["origin", "tree_size", "root_hash"],
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


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


_NAME = {"type": "string", "description": "a key name (C2SP signed-note)"}
_WITNESSED = {
    **_CHECKPOINT,
    "properties": {
        **_CHECKPOINT["properties"],
        "source": {"type": "string", "enum": ["gateway", "receipt"]},
        "cosignature": {
            "type": ["string", "null"],
            "contentEncoding": "base64",
            "description": "the relay's tlog-cosignature (key ID, time, signature) for a"
            " note, its threshold-cosignature/v1 signature for an old checkpoint; null for a"
            " receipt's",
        },
    },
    "required": [*_CHECKPOINT["required"], "source", "cosignature"],
}
_UPLOADED = _obj(
    {
        "acked_size": _INDEX,
        "relay_id": _STRING,
        "relay_key": _BASE64,
        "cosignature": _BASE64,
        "tree_size": _INDEX,
    }
)
_SINCE = Query("since", _INDEX, "the first entry index to return")
_LIMIT = Query("limit", {**_INDEX, "maximum": 2000}, "at most this many entries (<= 2000)")

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/openapi.json",
        "openapi",
        "This OpenAPI document.",
        Caller.ANYONE,
        (200,),
        answer=_obj({"openapi": _STRING, "info": _OBJECT, "paths": _OBJECT}),
    ),
    Route(
        "GET",
        "/healthz",
        "healthz",
        "Liveness: the relay process answers (it does not ask the database).",
        Caller.ANYONE,
        (200,),
        answer=_obj({"status": {"type": "string", "enum": ["ok"]}}),
    ),
    Route(
        "GET",
        "/readyz",
        "readyz",
        "Readiness: the relay's database answers; 503 not_ready when it does not.",
        Caller.ANYONE,
        (200, 503),
        answer=_obj({"status": {"type": "string", "enum": ["ready"]}}),
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
        answer=_obj(
            {"relay_id": _STRING, "time_ms": _INDEX, "nonce": _STRING, "signature": _BASE64}
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
        answer=_obj({"witnessed": _INDEX}),
    ),
    Route(
        "POST",
        "/v1/gateways/{gw}/entries",
        "upload",
        "An upload batch; answers the held size and the relay's cosignature.",
        Caller.GATEWAY,
        (200, 400, 401, 409, 413),
        body=(BATCH_CONTENT_TYPE, {"type": "string", "format": "binary"}),
        answer=_UPLOADED,
    ),
    Route(
        "GET",
        "/v1/gateways/{gw}/mailbox",
        "mailbox",
        "The owner's sealed mail to this gateway, in order.",
        Caller.GATEWAY,
        (200, 400, 401),
        query=(Query("after", _INDEX, "the last mail id already read"),),
        answer=_obj({"items": {"type": "array", "items": _obj({"id": _INDEX, "sealed": _BASE64})}}),
    ),
    Route(
        "POST",
        "/v1/gateways/{gw}/tunnel",
        "tunnel",
        "A short-lived snitun token for the gateway's own remote name (docs/remote.md); 404"
        " remote_not_offered without an SNI front, 404 name_not_routed, 403 name_not_yours.",
        Caller.GATEWAY,
        (200, 400, 401, 403, 404),
        body=("application/json", _obj({"name": _STRING})),
        answer=_obj(
            {
                "host_name": _STRING,
                "token": _STRING,
                "aes_key": _STRING,
                "aes_iv": _STRING,
                "valid_s": _INDEX,
                "port": _INDEX,
            }
        ),
    ),
    Route(
        "PUT",
        "/v1/gateways/{gw}/acme-challenge",
        "acme_challenge_set",
        "Publish the DNS-01 TXT record (RFC 8555 §8.4) for the gateway's own remote name.",
        Caller.GATEWAY,
        (200, 400, 401, 403, 404, 502),
        body=("application/json", _obj({"name": _STRING, "value": _STRING})),
        answer=_obj({"record": _STRING}),
    ),
    Route(
        "DELETE",
        "/v1/gateways/{gw}/acme-challenge",
        "acme_challenge_clear",
        "Withdraw the DNS-01 TXT record of the gateway's own remote name.",
        Caller.GATEWAY,
        (200, 400, 401, 403, 404, 502),
        query=(Query("name", _STRING, "the remote name", required=True),),
        answer=_obj({"record": _STRING}),
    ),
    Route(
        "GET",
        "/v1/owner/gateways/{gw}/entries",
        "owner_entries",
        "The sealed entries the relay holds.",
        Caller.OWNER,
        (200, 400, 401),
        query=(_SINCE, _LIMIT),
        answer=_obj(
            {
                "held_size": _INDEX,
                "entries": {"type": "array", "items": _obj({"index": _INDEX, "sealed": _BASE64})},
            }
        ),
    ),
    Route(
        "GET",
        "/v1/owner/gateways/{gw}/checkpoints",
        "owner_checkpoints",
        "Every witnessed checkpoint, with the relay's cosignatures.",
        Caller.OWNER,
        (200, 401),
        answer=_obj(
            {
                "gateway_key": _BASE64,
                "relay_id": _STRING,
                "relay_key": _BASE64,
                "checkpoints": {"type": "array", "items": _WITNESSED},
            }
        ),
    ),
    Route(
        "GET",
        "/v1/owner/gateways/{gw}/alarms",
        "owner_alarms",
        "The alarms the witness checks raised for this gateway.",
        Caller.OWNER,
        (200, 401),
        answer=_obj(
            {
                "alarms": {
                    "type": "array",
                    "items": _obj(
                        {"id": _INDEX, "time_ms": _INDEX, "code": _STRING, "detail": _STRING}
                    ),
                }
            }
        ),
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
        answer=_obj({"id": _INDEX}),
    ),
    Route(
        "GET",
        WITNESS_PREFIX,
        "witness_info",
        "The witness's key name and vkey (C2SP signed-note, type 0x04), and its prefixes.",
        Caller.ANYONE,
        (200,),
        answer=_obj(
            {
                "name": _NAME,
                "vkey": {"type": "string", "description": "the cosigner vkey (type 0x04)"},
                "submission_prefix": _STRING,
                "monitoring_prefix": _STRING,
            }
        ),
    ),
    Route(
        "POST",
        WITNESS_PREFIX + "/add-checkpoint",
        "witness_add_checkpoint",
        "C2SP tlog-witness add-checkpoint: old size, consistency proof, signed checkpoint;"
        " answers tlog-cosignature lines. For every registered gateway's log and every log"
        " added with `threshold cloud witness-log`. Limited per client address and overall.",
        Caller.ANYONE,
        (200, 400, 403, 404, 409, 413, 422, 429),
        body=("text/plain", {"type": "string"}),
        media={
            200: ("text/plain", {"type": "string", "description": "cosignature lines"}),
            409: (
                "text/x.tlog.size",
                {"type": "string", "description": "the latest cosigned size and a newline"},
            ),
        },
    ),
    Route(
        "GET",
        WITNESS_PREFIX + "/{origin_hash}/checkpoint",
        "witness_checkpoint",
        "C2SP tlog-witness monitoring: the latest checkpoint cosigned for the log whose"
        " origin's SHA-256 is origin_hash (lowercase hex), with the log's and the witness's"
        " signatures.",
        Caller.ANYONE,
        (200, 404),
        media={200: ("text/plain", {"type": "string", "description": "a signed note"})},
    ),
)


def _response(route: Route, code: int) -> dict[str, Any]:
    media = PROBLEM_TYPE if code >= 400 else "application/json"
    schema = {"$ref": "#/components/schemas/Problem"} if code >= 400 else route.answer
    if schema is None and (route.media is None or code not in route.media):
        raise ValueError(f"route {route.name} does not describe its {code} answer")
    if route.media is not None and code in route.media:
        media, schema = route.media[code]
    answer: dict[str, Any] = {
        "description": STATUS_TITLES.get(code, "Error"),
        "content": {media: {"schema": schema}},
    }
    if code == 429:
        answer["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return answer


def _operation(route: Route) -> dict[str, Any]:
    responses = {str(code): _response(route, code) for code in route.responses}
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
