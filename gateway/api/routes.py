"""The LAN API's route table, :data:`ROUTES`: the one source of the router and the spec.

``gateway.api.server`` builds the aiohttp router from this table (each route's handler is
found by its ``name``) and :func:`openapi_document` builds the OpenAPI 3.1 document served at
``/v1/openapi.json``; a test checks the two against each other. Pure data: no handler here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.api.problems import PROBLEM_TYPE, STATUS_TITLES
from gateway.trust.claims import MAX_TOKEN_CHARS

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
    #: Further media types of the success response (a clip or a snapshot; the app's files).
    also_media_types: tuple[str, ...] = ()
    streaming: bool = False  # a long-lived response: not counted against admission
    query: tuple[dict[str, Any], ...] = ()  # OpenAPI parameter objects, "in": "query"
    #: The JSON schema of the success body (media type application/json).
    answer: dict[str, Any] | None = None
    #: Authenticated by the owner app's session cookie and CSRF token (docs/owner-app.md).
    app_session: bool = False

    @property
    def answers(self) -> tuple[int, ...]:
        """Every status the route can send: its own, plus what the middlewares add to any
        route (the per-address limit; for a body, its parsing, its deadline and its cap; for
        the owner, the signature)."""
        codes = set(self.responses) | {429}
        if self.request_schema is not None or self.query:
            codes.add(400)
        if self.request_schema is not None:
            codes |= {408, 413}
        if self.owner or self.app_session:
            codes.add(401)
        if self.app_session and self.method != "GET":
            codes.add(403)  # no CSRF token, or not from the app's origin
        return tuple(sorted(codes))


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


_S = {"type": "string"}
# Binary values are unpadded base64url of a fixed length: 32 bytes are 43 characters, 64 are 86.
_NONCE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"}
_PROOF = {"type": "string", "pattern": "^[A-Za-z0-9_-]{85}[AQgw]$"}
_TOKEN = {
    "type": "string",
    "pattern": "^v4[.]public[.][A-Za-z0-9_.-]+$",
    "maxLength": MAX_TOKEN_CHARS,
}
_EVENTS_QUERY = (
    {
        "name": "since",
        "in": "query",
        "required": False,
        "description": "The first audit index to return (default 0).",
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "At most this many entries (default 100).",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
)
_CAMERA_QUERY = (
    {
        "name": "camera",
        "in": "query",
        "required": False,
        "description": "Which camera (its [[camera]] name; GET /v1/owner/cameras lists them);"
        " default: the first.",
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$"},
    },
)
# The success bodies (docs/api.md gives the same in prose).
_INT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_TIME = {"type": "string", "format": "date-time"}
_B64 = {"type": "string", "contentEncoding": "base64"}
_B64U = {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}
_NULLABLE_S = {"type": ["string", "null"]}
_STATES = [
    "requested",
    "denied",
    "awaiting_approval",
    "granted",
    "unlocking",
    "open",
    "relocking",
    "closed",
    "failed",
    "alarm",
]
_SESSION = _obj(
    {
        "session": _S,
        "door": _S,
        "state": {"type": "string", "enum": _STATES},
        "purpose": _S,
        "subject": _S,
        "ticket_id": _S,
        "reason": _NULLABLE_S,
        "created_at": _TIME,
        "updated_at": _TIME,
    },
    [
        "session",
        "door",
        "state",
        "purpose",
        "subject",
        "ticket_id",
        "reason",
        "created_at",
        "updated_at",
    ],
)
CHECKPOINT_SCHEMA: dict[str, Any] = {
    "description": "docs/audit-log.md, Checkpoints: `note` is the C2SP tlog-checkpoint signed"
    " note (format tlog-checkpoint); a threshold-checkpoint/v1 one has `signature` instead."
    " `time_ms` is the gateway's clock, not signed in a note.",
    "type": "object",
    "properties": {
        "format": {"type": "string", "enum": ["tlog-checkpoint", "threshold-checkpoint/v1"]},
        "note": _S,
        "origin": _S,
        "tree_size": _INT,
        "root_hash": _B64,
        "time_ms": _INT,
        "signature": _B64,
    },
    "required": ["format", "origin", "tree_size", "root_hash", "time_ms"],
}
_RECEIPT_FIELDS = {
    "index": _INT,
    "time_ms": _INT,
    "kind": _S,
    "sealed": {"type": "boolean"},
    "leaf_bytes": _B64,
}
_RECEIPT = {
    "description": "docs/api.md, Receipts: complete, or pending until the entry's upload "
    "slot has closed (paced uploads, docs/privacy.md), or null if the store failed.",
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "properties": {
                **_RECEIPT_FIELDS,
                "inclusion_proof": {"type": "array", "items": _B64},
                "checkpoint": CHECKPOINT_SCHEMA,
            },
            "required": [*_RECEIPT_FIELDS, "inclusion_proof", "checkpoint"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {**_RECEIPT_FIELDS, "pending": {"type": "boolean", "enum": [True]}},
            "required": [*_RECEIPT_FIELDS, "pending"],
            "additionalProperties": False,
        },
    ],
}
_DONE = {
    **_SESSION,
    "properties": {**_SESSION["properties"], "receipt": _RECEIPT},
    "description": "The session; `receipt` only once it is closed (null if the store failed).",
}
_EVENT = {
    "type": "object",
    "properties": {
        "index": _INT,
        "time_ms": _INT,
        "kind": _S,
        "body": {"type": "object"},
        "verified": {"type": "boolean"},
        "unverified": {
            "type": "object",
            "properties": {"status": _S, "field": _NULLABLE_S, "detail": _S},
            "required": ["status", "field", "detail"],
        },
    },
    "required": ["index", "time_ms", "kind", "body", "verified"],
}
_INFO = _obj(
    {
        "gateway_id": _S,
        "public_key": _B64U,
        "tls_fingerprint": _NULLABLE_S,
        "doors": {"type": "array", "items": _S},
        "api_version": _S,
    },
    ["gateway_id", "public_key", "tls_fingerprint", "doors", "api_version"],
)
_LOCK_STATE = {
    "type": "string",
    "enum": ["locked", "unlocking", "unlocked", "locking", "jammed", "unknown"],
}
_DOOR_STATE = {"type": "string", "enum": ["open", "closed", "unknown"]}
_LOCKED = _obj(
    {"door": _S, "lock": _LOCK_STATE, "door_state": _DOOR_STATE},
    ["door", "lock", "door_state"],
)
_OPENAPI = {
    "type": "object",
    "properties": {"openapi": _S, "info": {"type": "object"}, "paths": {"type": "object"}},
    "required": ["openapi", "info", "paths"],
}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/info", "info", "Gateway identity, doors and API version.", answer=_INFO),
    Route("GET", "/v1/openapi.json", "openapi", "This OpenAPI document.", answer=_OPENAPI),
    Route(
        "POST",
        "/v1/challenges",
        "challenge",
        "A fresh single-use 32-byte nonce to sign (valid about 10 s).",
        responses=(201, 429, 503),
        answer=_obj({"nonce": _NONCE, "expires_at": _TIME}, ["nonce", "expires_at"]),
    ),
    Route(
        "POST",
        "/v1/access",
        "access",
        "Present a ticket with a proof of possession; 201 open, 202 awaiting the owner.",
        request_schema=_obj(
            {
                "ticket": _TOKEN,
                "door": _S,
                "nonce": _NONCE,
                "proof": _PROOF,
                "package_code": {"type": "string", "maxLength": 256},
                "revocations": _TOKEN,
            },
            ["ticket", "door", "nonce", "proof"],
        ),
        responses=(201, 202, 400, 403, 409, 413, 429, 503),
        answer=_SESSION,
    ),
    Route(
        "GET",
        "/v1/access/{session}",
        "session",
        "An access session's state.",
        responses=(200, 404),
        answer=_SESSION,
    ),
    Route(
        "POST",
        "/v1/access/{session}/done",
        "done",
        "The visitor is out: a fresh proof (action 'done') by the same holder; relocks.",
        request_schema=_obj({"nonce": _NONCE, "proof": _PROOF}, ["nonce", "proof"]),
        responses=(200, 400, 403, 404),
        answer=_DONE,
    ),
    Route(
        "GET",
        "/v1/owner/events",
        "owner_events",
        "Audit log entries (query: since, limit).",
        owner=True,
        responses=(200, 400, 401),
        query=_EVENTS_QUERY,
        answer=_obj({"events": {"type": "array", "items": _EVENT}}, ["events"]),
    ),
    Route(
        "GET",
        "/v1/owner/sessions",
        "owner_sessions",
        "Recent and open access sessions.",
        owner=True,
        responses=(200, 401),
        answer=_obj({"sessions": {"type": "array", "items": _SESSION}}, ["sessions"]),
    ),
    Route(
        "POST",
        "/v1/owner/approvals",
        "owner_approvals",
        "An owner-signed approval (or refusal) of a session awaiting approval. An approval "
        "re-runs every check that can have changed while the session waited (revocation, "
        "validity window, schedule, clock, camera, store): 409 approval_voided when one no "
        "longer holds (the session is denied), 409 not_awaiting_approval when it is not waiting.",
        owner=True,
        request_schema=_obj({"approval": _TOKEN}, ["approval"]),
        responses=(200, 400, 401, 404, 409),
        answer=_SESSION,
    ),
    Route(
        "POST",
        "/v1/owner/revocations",
        "owner_revocations",
        "An owner-signed revocation list (refused if older than the one held).",
        owner=True,
        request_schema=_obj({"revocations": _TOKEN}, ["revocations"]),
        responses=(200, 400, 401),
        answer=_obj({"seq": _INT}, ["seq"]),
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
        answer=_LOCKED,
    ),
    Route(
        "POST",
        "/v1/owner/clock/reset",
        "owner_clock_reset",
        "Set a time floor that is ahead of the gateway's clock back to the clock, recorded as "
        "clock.floor_reset (old and new values); no body. Answers the floor before and after.",
        owner=True,
        responses=(200, 401, 503),
        answer=_obj(
            {"reset": {"type": "boolean"}, "old_floor_ms": _INT, "floor_ms": _INT},
            ["reset", "old_floor_ms", "floor_ms"],
        ),
    ),
    Route(
        "GET",
        "/v1/owner/cameras",
        "owner_cameras",
        "Every camera of the home: its name, the doors it watches and whether it is live.",
        owner=True,
        responses=(200, 401),
        answer=_obj(
            {
                "cameras": {
                    "type": "array",
                    "items": _obj(
                        {
                            "name": _S,
                            "doors": {"type": "array", "items": _S},
                            "live": {"type": "boolean"},
                        },
                        ["name", "doors", "live"],
                    ),
                }
            },
            ["cameras"],
        ),
    ),
    Route(
        "GET",
        "/v1/owner/camera/live",
        "owner_live_view",
        "The camera live, as MJPEG (multipart/x-mixed-replace, at most 5 fps, 2 viewers);"
        " ?camera=NAME picks one of several.",
        owner=True,
        responses=(200, 400, 401, 404, 429, 503),
        media_type="multipart/x-mixed-replace",
        streaming=True,
        query=_CAMERA_QUERY,
    ),
    Route(
        "GET",
        "/v1/owner/camera/snapshot",
        "owner_snapshot",
        "One JPEG of the camera's newest picture; ?camera=NAME picks one of several.",
        owner=True,
        responses=(200, 400, 401, 404, 503),
        media_type="image/jpeg",
        query=_CAMERA_QUERY,
    ),
)

_OBJ = {"type": "object"}


_CEREMONY = _obj({"ceremony": _S, "credential": _OBJ}, ["ceremony", "credential"])
_JSON_ERRORS = (400, 401, 403)

# The owner app's answer bodies (docs/owner-app.md; gateway/owner/app.py builds them).
_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0, "maximum": 2**63 - 1}
_NULLABLE_NUM = {"type": ["number", "null"]}
_ROLE = {"type": "string", "enum": ["owner", "member"]}
_ACT = _obj(
    {
        "kind": {
            "type": "string",
            "enum": ["sign_in", "approve", "deny", "unlock", "lock", "invite"],
        },
        "target": _S,
    },
    ["kind", "target"],
)
_DEVICE = _obj(
    {
        "device": _S,
        "name": _S,
        "role": _ROLE,
        "created_ms": _INT,
        "last_used_ms": _NULLABLE_INT,
        "revoked_ms": _NULLABLE_INT,
        "may_open": {"type": "boolean"},
    },
    ["device", "name", "role", "created_ms", "last_used_ms", "revoked_ms", "may_open"],
)
_DEVICES = _obj({"devices": {"type": "array", "items": _DEVICE}}, ["devices"])
_ME = _obj(
    {
        "device": _S,
        "role": _ROLE,
        "may_open": {"type": "boolean"},
        "csrf": _S,
        "gateway_id": _S,
        "doors": {"type": "array", "items": _S},
    },
    ["device", "role", "may_open", "csrf", "gateway_id", "doors"],
)
# WebAuthn options as the browser's PublicKeyCredential.parseCreationOptionsFromJSON and
# parseRequestOptionsFromJSON take them (py_webauthn's options_to_json); open-ended, as the
# WebAuthn spec lets them grow.
_CREATION_OPTIONS = {
    "description": "WebAuthn PublicKeyCredentialCreationOptionsJSON.",
    "type": "object",
    "properties": {
        "rp": {"type": "object"},
        "user": {"type": "object"},
        "challenge": _B64U,
        "pubKeyCredParams": {"type": "array", "items": {"type": "object"}},
        "timeout": _INT,
    },
    "required": ["rp", "user", "challenge", "pubKeyCredParams"],
}
_REQUEST_OPTIONS = {
    "description": "WebAuthn PublicKeyCredentialRequestOptionsJSON.",
    "type": "object",
    "properties": {
        "challenge": _B64U,
        "rpId": _S,
        "timeout": _INT,
        "allowCredentials": {"type": "array", "items": {"type": "object"}},
        "userVerification": _S,
    },
    "required": ["challenge"],
}
_APP_SESSION = {
    **_SESSION,
    "properties": {**_SESSION["properties"], "issuer": _S},
    "required": [*_SESSION["required"], "issuer"],
    "description": "A session as the owner app shows it: the LAN API's, and its ticket's issuer.",
}
_CAMERA_NOW = {
    "configured": {"type": "boolean"},
    "live": {"type": "boolean"},
    "state": {"type": "string", "enum": ["connecting", "streaming", "disconnected", "stopped"]},
    "last_picture_age_s": _NULLABLE_NUM,
    "fps": _NULLABLE_NUM,
    "reconnects": _INT,
}
_NOW = _obj(
    {
        "doors": {
            "type": "array",
            "items": {
                **_obj(
                    {
                        "door": _S,
                        "lock": _LOCK_STATE,
                        "door_state": _DOOR_STATE,
                        "battery_percent": {
                            "type": ["integer", "null"],
                            "minimum": 0,
                            "maximum": 100,
                        },
                        "battery_critical": {"type": "boolean"},
                        "error": _S,
                        "session": _NULLABLE_S,
                    },
                    ["door", "lock", "door_state", "session"],
                ),
                "description": "The lock as read now; `error` (a lock error's code, or timeout)"
                " instead of the battery when it could not be read.",
            },
        },
        "camera": {
            **_obj(_CAMERA_NOW, ["configured", "live"]),
            "description": "The first camera's health (only configured and live when none).",
        },
        "cameras": {
            "type": "array",
            "items": _obj(
                {"name": _S, "doors": {"type": "array", "items": _S}, **_CAMERA_NOW},
                ["name", "doors", "configured", "live"],
            ),
        },
        "sessions": {"type": "array", "items": _APP_SESSION},
        "awaiting": {"type": "array", "items": _APP_SESSION},
        "alarms": {"type": "array", "items": _APP_SESSION},
        "feed_seq": _INT,
    },
    ["doors", "camera", "cameras", "sessions", "awaiting", "alarms", "feed_seq"],
)
_CLIP_STATUS = ["verified", "file_gone", "log_unverified", "hash_mismatch", "missing"]
_VISIT = _obj(
    {
        "session": _S,
        "door": _S,
        "purpose": _S,
        "subject": _S,
        "issuer": _S,
        "started_ms": _INT,
        "ended_ms": _INT,
        "state": _S,
        "outcome": {
            "type": "string",
            "enum": ["visited", "refused", "lock failed", "alarm", "in progress"],
        },
        "approved_by": _NULLABLE_S,
        "refusals": {
            "type": "array",
            "items": _obj(
                {"code": _NULLABLE_S, "why": _NULLABLE_S, "by": _NULLABLE_S}, ["code", "why", "by"]
            ),
        },
        "alarms": {"type": "array", "items": _S},
        "snapshots": {
            "type": "array",
            "items": _obj(
                {"entry": _INT, "moment": _NULLABLE_S, "verified": {"type": "boolean"}},
                ["entry", "moment", "verified"],
            ),
        },
        "clips": {
            "type": "array",
            "items": {
                **_obj(
                    {
                        "entry": _INT,
                        "status": {"type": "string", "enum": _CLIP_STATUS},
                        "sha256": _NULLABLE_S,
                        "duration_ms": _NULLABLE_INT,
                        "sealed": {"type": "boolean"},
                        "verified": {"type": "boolean"},
                        "reason": _NULLABLE_S,
                    },
                    ["entry", "status"],
                ),
                "description": "A recorded clip (sha256, duration_ms, sealed, verified), or one"
                " that could not be recorded (status missing, with its reason).",
            },
        },
        "entries": {"type": "array", "items": _INT},
        "verified": {"type": "boolean"},
    },
    [
        "session",
        "door",
        "purpose",
        "subject",
        "issuer",
        "started_ms",
        "ended_ms",
        "state",
        "outcome",
        "approved_by",
        "refusals",
        "alarms",
        "snapshots",
        "clips",
        "entries",
        "verified",
    ],
)
_HISTORY = _obj(
    {
        "visits": {"type": "array", "items": _VISIT},
        "per_day": {
            "type": "array",
            "items": _obj(
                {"day": {"type": "string", "format": "date"}, "visits": _INT}, ["day", "visits"]
            ),
        },
        "log": _obj(
            {
                "ok": {"type": "boolean"},
                "entries": _INT,
                "first_bad_index": _NULLABLE_INT,
                "problem": _NULLABLE_S,
                "unattested_entries": _INT,
            },
            ["ok", "entries", "first_bad_index", "problem", "unattested_entries"],
        ),
        "people": {"type": "array", "items": _S},
        "purposes": {"type": "array", "items": _S},
        "doors": {"type": "array", "items": _S},
    },
    ["visits", "per_day", "log", "people", "purposes", "doors"],
)
_RENAMED = _obj({"device": _S}, ["device"])
_PERMITTED = _obj({"device": _S, "may_open": {"type": "boolean"}}, ["device", "may_open"])
_REVOKED = _obj({"device": _S, "revoked": {"type": "boolean"}}, ["device", "revoked"])
_PUSH_KINDS = {"type": "array", "items": _S}
_PUSH = _obj(
    {
        "available": {"type": "boolean"},
        "vapid_public_key": _NULLABLE_S,
        "subscribed": {"type": "boolean"},
        "kinds": _PUSH_KINDS,
        "choices": {
            "type": "array",
            "items": _obj({"kind": _S, "label": _S}, ["kind", "label"]),
        },
    },
    ["available", "vapid_public_key", "subscribed", "kinds", "choices"],
)
_PUSH_SUBSCRIPTION = {
    "type": "object",
    "description": "The browser's PushSubscription as JSON (toJSON()): an https endpoint and"
    " its keys p256dh (65 bytes) and auth (16 bytes), base64url.",
    "properties": {
        "endpoint": _S,
        "expirationTime": {"type": ["number", "null"]},
        "keys": _obj({"p256dh": _B64U, "auth": _B64U}, ["p256dh", "auth"]),
    },
    "required": ["endpoint", "keys"],
}
_SSE = {
    "type": "string",
    "description": "Server-Sent Events: `event: notice` with `id:` its sequence number and"
    " `data:` the notice as JSON (kind, door, session, purpose, subject, text, alert, at_ms);"
    " `: ping` comments keep it open; `retry: 2000` asks the browser to come back after 2 s.",
}

#: The owner app (docs/owner-app.md): its page and files under ``/app/``, its JSON API under
#: ``/v1/app/`` (the session cookie and CSRF token), and the root key's device routes.
APP_ROUTES: tuple[Route, ...] = (
    Route("GET", "/app/", "app_shell", "The owner app's page (text/html).", media_type="text/html"),
    Route(
        "GET",
        "/app/{asset}",
        "app_asset",
        "The owner app's files: scripts, style, manifest, service worker, icon.",
        responses=(200, 304, 404),
        media_type="text/javascript",
        also_media_types=("text/css", "text/html", "application/manifest+json", "image/svg+xml"),
    ),
    Route(
        "POST",
        "/v1/app/enroll/options",
        "app_enroll_options",
        "WebAuthn creation options for a one-time enrollment link's secret.",
        request_schema=_obj({"token": _S}, ["token"]),
        responses=(200, 400, 403),
        answer=_obj(
            {"ceremony": _S, "options": _CREATION_OPTIONS, "role": _ROLE, "name": _S},
            ["ceremony", "options", "role", "name"],
        ),
    ),
    Route(
        "POST",
        "/v1/app/enroll",
        "app_enroll",
        "Register the new passkey, spend the link, record the device; signs the device in.",
        request_schema=_CEREMONY,
        responses=(200, 400, 403),
        answer=_ME,
    ),
    Route(
        "POST",
        "/v1/app/signin/options",
        "app_signin_options",
        "WebAuthn request options to sign in with a discoverable passkey.",
        responses=(200, 403),
        answer=_obj({"ceremony": _S, "options": _REQUEST_OPTIONS}, ["ceremony", "options"]),
    ),
    Route(
        "POST",
        "/v1/app/signin",
        "app_signin",
        "Verify a user-verified assertion; sets the session cookie, returns the CSRF token.",
        request_schema=_CEREMONY,
        responses=(200, 400, 403),
        answer=_ME,
    ),
    Route(
        "POST",
        "/v1/app/signout",
        "app_signout",
        "End this session.",
        responses=(200, 401, 403),
        app_session=True,
        answer=_obj({"signed_out": {"type": "boolean"}}, ["signed_out"]),
    ),
    Route(
        "GET",
        "/v1/app/me",
        "app_me",
        "The signed-in device, its role and its CSRF token.",
        responses=(200, 401),
        app_session=True,
        answer=_ME,
    ),
    Route(
        "GET",
        "/v1/app/now",
        "app_now",
        "Doors (lock, door, battery), the camera's health, open sessions, approvals, alarms.",
        responses=(200, 401),
        app_session=True,
        answer=_NOW,
    ),
    Route(
        "GET",
        "/v1/app/events/stream",
        "app_events_stream",
        "The owner's notices as Server-Sent Events (resumes after Last-Event-ID).",
        responses=(200, 401),
        media_type="text/event-stream",
        streaming=True,
        app_session=True,
    ),
    Route(
        "GET",
        "/v1/app/sessions/{session}",
        "app_session",
        "A session (the visitor waiting: name, purpose, issuer, door).",
        responses=(200, 401, 404),
        app_session=True,
        answer=_APP_SESSION,
    ),
    Route(
        "POST",
        "/v1/app/acts/options",
        "app_act_options",
        "WebAuthn request options whose challenge commits to one act (approve, deny, unlock).",
        request_schema=_obj({"act": _OBJ}, ["act"]),
        responses=(200, *_JSON_ERRORS),
        app_session=True,
        answer=_obj(
            {"ceremony": _S, "options": _REQUEST_OPTIONS, "act": _ACT},
            ["ceremony", "options", "act"],
        ),
    ),
    Route(
        "POST",
        "/v1/app/acts",
        "app_act",
        "Do the act with a fresh user-verified assertion over it; recorded with the device.",
        request_schema=_obj(
            {"act": _OBJ, "ceremony": _S, "credential": _OBJ}, ["act", "ceremony", "credential"]
        ),
        responses=(200, *_JSON_ERRORS, 404, 409, 503),
        app_session=True,
        answer={
            "oneOf": [_obj({"session": _APP_SESSION}, ["session"]), _LOCKED],
            "description": "Approve or deny: the session; unlock: the door.",
        },
    ),
    Route(
        "POST",
        "/v1/app/doors/{door}/lock",
        "app_lock",
        "Lock a door by hand (lets nobody in: no passkey needed); recorded with the device.",
        responses=(200, *_JSON_ERRORS, 404, 503),
        app_session=True,
        answer=_LOCKED,
    ),
    Route(
        "GET",
        "/v1/app/history",
        "app_history",
        "Visits (one card per session, verified against the audit log), visits per day "
        "(query: person, purpose, door).",
        responses=(200, 401),
        app_session=True,
        answer=_HISTORY,
    ),
    Route(
        "GET",
        "/v1/app/media/{entry}",
        "app_media",
        "The clip (video/mp4) or snapshot (image/jpeg) an audit entry records.",
        responses=(200, 401, 404),
        media_type="video/mp4",
        also_media_types=("image/jpeg",),
        app_session=True,
    ),
    Route(
        "GET",
        "/v1/app/camera/live",
        "app_live_view",
        "The camera live as MJPEG (the owner's live view, shared viewer limit); ?camera=NAME"
        " picks one of several.",
        responses=(200, 400, 401, 404, 429, 503),
        query=_CAMERA_QUERY,
        media_type="multipart/x-mixed-replace",
        streaming=True,
        app_session=True,
    ),
    Route(
        "GET",
        "/v1/app/camera/snapshot",
        "app_snapshot",
        "One JPEG of the camera's newest picture; ?camera=NAME picks one of several.",
        responses=(200, 400, 401, 404, 503),
        query=_CAMERA_QUERY,
        media_type="image/jpeg",
        app_session=True,
    ),
    Route(
        "GET",
        "/v1/app/devices",
        "app_devices",
        "The owner's devices.",
        responses=(200, 401),
        app_session=True,
        answer=_DEVICES,
    ),
    Route(
        "POST",
        "/v1/app/devices/{device}/rename",
        "app_device_rename",
        "Rename a device (an owner device: any; a member device: itself).",
        request_schema=_obj({"name": _S}, ["name"]),
        responses=(200, *_JSON_ERRORS, 404),
        app_session=True,
        answer=_RENAMED,
    ),
    Route(
        "POST",
        "/v1/app/devices/{device}/revoke",
        "app_device_revoke",
        "Revoke a device (owner devices only); its sessions and streams end at once.",
        responses=(200, *_JSON_ERRORS, 404),
        app_session=True,
        answer=_REVOKED,
    ),
    Route(
        "POST",
        "/v1/app/devices/{device}/permission",
        "app_device_permission",
        "Allow a member device to open doors (approve, deny, unlock), or stop it (owner "
        "devices only).",
        request_schema=_obj({"may_open": {"type": "boolean"}}, ["may_open"]),
        responses=(200, *_JSON_ERRORS, 404),
        app_session=True,
        answer=_PERMITTED,
    ),
    Route(
        "GET",
        "/v1/app/push",
        "app_push",
        "This device's Web Push subscription, the kinds it wants, and the gateway's VAPID key.",
        responses=(200, 401),
        app_session=True,
        answer=_PUSH,
    ),
    Route(
        "POST",
        "/v1/app/push/subscribe",
        "app_push_subscribe",
        "Subscribe this device to Web Push (replacing its subscription), with the kinds of"
        " notice it wants (default: all).",
        request_schema=_obj(
            {"subscription": _PUSH_SUBSCRIPTION, "kinds": _PUSH_KINDS}, ["subscription"]
        ),
        responses=(200, *_JSON_ERRORS),
        app_session=True,
        answer=_PUSH,
    ),
    Route(
        "POST",
        "/v1/app/push/preferences",
        "app_push_preferences",
        "The kinds of notice this device wants pushed.",
        request_schema=_obj({"kinds": _PUSH_KINDS}, ["kinds"]),
        responses=(200, *_JSON_ERRORS),
        app_session=True,
        answer=_PUSH,
    ),
    Route(
        "POST",
        "/v1/app/push/unsubscribe",
        "app_push_unsubscribe",
        "Stop pushing to this device (its subscription is deleted).",
        responses=(200, *_JSON_ERRORS),
        app_session=True,
        answer=_PUSH,
    ),
    Route(
        "POST",
        "/v1/owner/enrollments",
        "owner_enrollments",
        "A one-time enrollment link for a new device (about 10 minutes).",
        owner=True,
        request_schema=_obj(
            {"role": {"type": "string", "enum": ["owner", "member"]}, "name": _S}, []
        ),
        responses=(201, 400, 401),
        answer=_obj(
            {"link": _S, "expires_ms": _INT, "role": _ROLE, "name": _S},
            ["link", "expires_ms", "role", "name"],
        ),
    ),
    Route(
        "GET",
        "/v1/owner/devices",
        "owner_devices",
        "The owner's devices.",
        owner=True,
        responses=(200, 401),
        answer=_DEVICES,
    ),
    Route(
        "POST",
        "/v1/owner/devices/{device}/rename",
        "owner_device_rename",
        "Rename a device.",
        owner=True,
        request_schema=_obj({"name": _S}, ["name"]),
        responses=(200, 400, 401, 404),
        answer=_RENAMED,
    ),
    Route(
        "POST",
        "/v1/owner/devices/{device}/revoke",
        "owner_device_revoke",
        "Revoke a device; its sessions and streams end at once.",
        owner=True,
        responses=(200, 400, 401, 404),
        answer=_REVOKED,
    ),
    Route(
        "POST",
        "/v1/owner/devices/{device}/permission",
        "owner_device_permission",
        "Allow a member device to open doors (approve, deny, unlock), or stop it.",
        owner=True,
        request_schema=_obj({"may_open": {"type": "boolean"}}, ["may_open"]),
        responses=(200, 400, 401, 404),
        answer=_PERMITTED,
    ),
)

ROUTES += APP_ROUTES

_HOUSEHOLD_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "public_key": _S,
        "gateway_id": _S,
        "certificate": {"type": ["string", "null"]},
        "allowances": {"type": "array", "items": _S},
    },
    "required": ["public_key", "gateway_id", "certificate", "allowances"],
}
_VISIT_TICKET = {
    "type": "object",
    "properties": {"door": _S, "jti": _S, "ticket": _S, "exp": _S},
    "required": ["door", "jti", "ticket", "exp"],
}
_VISIT_ANSWER: dict[str, Any] = {
    "type": "object",
    "description": "An invitation as the visitor's page shows it (docs/visitors.md).",
    "properties": {
        "invitation": _S,
        "gateway_id": _S,
        "zone": _S,
        "name": _S,
        "kind": {"type": "string", "enum": ["cleaner", "dog_walker", "guest"]},
        "doors": {"type": "array", "items": _S},
        "schedule": {"type": "array", "items": {"type": "object"}},
        "days": {"type": "integer"},
        "uses": {"type": "integer"},
        "uses_total": {"type": "integer"},
        "uses_per_window": {"type": "integer"},
        "camera_required": {"type": "boolean"},
        "invited_by": _S,
        "ends": _S,
        "claimed": {"type": "boolean"},
        "revoked": {"type": "boolean"},
        "next_window": {"type": ["object", "null"]},
        "tickets": {"type": "array", "items": _VISIT_TICKET},
    },
    "required": [
        "invitation",
        "gateway_id",
        "zone",
        "name",
        "kind",
        "doors",
        "schedule",
        "ends",
        "claimed",
        "revoked",
        "next_window",
    ],
}

#: Keys for people (docs/visitors.md): the household issuer (root key), the owner app's
#: invitations (the app's session and a passkey) and the visitor's page and its routes.
VISITOR_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/owner/household-issuer",
        "owner_household",
        "The household issuer: its public key, its certificate (or null) and what it allows.",
        owner=True,
        responses=(200, 401, 404),
        answer=_HOUSEHOLD_ANSWER,
    ),
    Route(
        "POST",
        "/v1/owner/household-issuer",
        "owner_household_certify",
        "Give the household issuer a (new) owner-signed certificate: purposes service and "
        "guest only, named doors, tickets of at most 7 days; recorded.",
        owner=True,
        request_schema=_obj({"certificate": _TOKEN}, ["certificate"]),
        responses=(200, 400, 401, 404),
        answer=_HOUSEHOLD_ANSWER,
    ),
)
_TERMS = {"type": "object"}
_B64_32 = _NONCE
_INVITATION_VIEW: dict[str, Any] = {
    **_VISIT_ANSWER,
    "description": "An invitation as the owner's app lists it (docs/visitors.md).",
}
VISITOR_ROUTES += (
    Route(
        "POST",
        "/v1/app/invitations/options",
        "app_invitation_options",
        "The passkey challenge for inviting a visitor with these terms (it commits to them).",
        request_schema=_obj({"terms": _TERMS}, ["terms"]),
        responses=(200, *_JSON_ERRORS, 409),
        answer=_obj(
            {"ceremony": _S, "options": _REQUEST_OPTIONS, "act": _ACT},
            ["ceremony", "options", "act"],
        ),
        app_session=True,
    ),
    Route(
        "POST",
        "/v1/app/invitations",
        "app_invite",
        "Invite a visitor: the terms, with a fresh passkey assertion over them; a one-time "
        "link (and its QR code as SVG), recorded.",
        request_schema=_obj(
            {"terms": _TERMS, "ceremony": _S, "credential": _OBJ},
            ["terms", "ceremony", "credential"],
        ),
        responses=(201, *_JSON_ERRORS, 409),
        answer=_obj(
            {"invitation": _S, "link": _S, "link_expires": _S, "ends": _S, "qr_svg": _S},
            ["invitation", "link", "link_expires", "ends", "qr_svg"],
        ),
        app_session=True,
    ),
    Route(
        "GET",
        "/v1/app/invitations",
        "app_invitations",
        "Every invitation: its terms, whether claimed or revoked, its next window.",
        responses=(200, 401),
        answer=_obj(
            {"zone": _S, "invitations": {"type": "array", "items": _INVITATION_VIEW}},
            ["zone", "invitations"],
        ),
        app_session=True,
    ),
    Route(
        "POST",
        "/v1/app/invitations/{invitation}/revoke",
        "app_invitation_revoke",
        "Withdraw an invitation: the visitor's key stops at once on this gateway; recorded.",
        responses=(200, *_JSON_ERRORS, 404),
        answer=_INVITATION_VIEW,
        app_session=True,
    ),
    Route(
        "GET", "/visit/", "visit_page", "The visitor's page (text/html).", media_type="text/html"
    ),
    Route(
        "GET",
        "/visit/{asset}",
        "visit_asset",
        "A file of the visitor's page (script, style).",
        responses=(200, 404),
        media_type="text/plain",
    ),
    Route(
        "POST",
        "/v1/visit/preview",
        "visit_preview",
        "What an invitation link offers, before it is accepted (nothing is spent).",
        request_schema=_obj({"token": _S}, ["token"]),
        responses=(200, 400, 403, 404, 409, 410),
        answer=_VISIT_ANSWER,
    ),
    Route(
        "POST",
        "/v1/visit/claim",
        "visit_claim",
        "Accept an invitation with the visitor's Ed25519 public key: the link is spent and "
        "tickets bound to that key are issued (409 invitation_used for a second claim).",
        request_schema=_obj({"token": _S, "public_key": _B64_32}, ["token", "public_key"]),
        responses=(201, 400, 403, 404, 409, 410),
        answer=_VISIT_ANSWER,
    ),
    Route(
        "POST",
        "/v1/visit/challenge",
        "visit_challenge",
        "A single-use nonce to sign for a renewal (valid 30 s).",
        responses=(201,),
        answer={"type": "object", "properties": {"nonce": _S}, "required": ["nonce"]},
    ),
    Route(
        "POST",
        "/v1/visit/renew",
        "visit_renew",
        "Fresh tickets (mode renew) or the invitation as it stands (mode status: revoked, "
        "next window) for the visitor's page that proves it holds the invitation's key "
        "(Ed25519 over the proof message with the invitation id and the mode as action).",
        request_schema=_obj(
            {
                "invitation": _S,
                "nonce": _NONCE,
                "proof": _PROOF,
                "mode": {"type": "string", "enum": ["renew", "status"]},
            },
            ["invitation", "nonce", "proof"],
        ),
        responses=(200, 400, 403, 404, 410),
        answer=_VISIT_ANSWER,
    ),
)
ROUTES += VISITOR_ROUTES
ROUTE_BY_NAME = {route.name: route for route in ROUTES}
STREAMING_PATHS = frozenset(route.path for route in ROUTES if route.streaming)


def _success_schema(route: Route, media_type: str) -> dict[str, Any]:
    if media_type == "application/json":
        # A JSON route without a schema is a bare object: the document's test finds it.
        return route.answer or {"type": "object"}
    if media_type == "text/event-stream":
        return _SSE
    if media_type.startswith("text/"):
        return _S
    return {"type": "string", "format": "binary"}


def _content(route: Route, code: int) -> dict[str, Any]:
    if code >= 400:
        return {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    if code == 304:
        return {}  # not modified: no body
    kinds = (route.media_type, *route.also_media_types)
    return {kind: {"schema": _success_schema(route, kind)} for kind in kinds}


def openapi_document(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        op: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "responses": {
                str(code): {
                    "description": "Not Modified" if code == 304 else STATUS_TITLES.get(code, "OK"),
                    **({"content": content} if (content := _content(route, code)) else {}),
                }
                for code in route.answers
            },
        }
        params = [seg[1:-1] for seg in route.path.split("/") if seg.startswith("{")]
        parameters = [
            {"name": p, "in": "path", "required": True, "schema": _S} for p in params
        ] + list(route.query)
        if parameters:
            op["parameters"] = parameters
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
