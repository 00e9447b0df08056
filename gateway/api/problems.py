"""Problem answers (RFC 9457 ``application/problem+json``): the stable codes and their status.

Every error the LAN API sends is built here, from a :class:`Problem` raised by a handler or a
middleware, or from a typed error of a lower layer (an access refusal, a store, lock or camera
error) translated by :func:`problem_of`. Apps key on ``code``; ``detail`` is for people and
never carries a client's bytes or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ble.errors import LockError
from gateway.access.errors import AccessCode, AccessRefused, DocumentRejected
from gateway.owner.errors import (
    AssertionRefused,
    BadAppRequest,
    CsrfRefused,
    DeviceUnknown,
    EnrollmentRefused,
    MediaUnknown,
    NotSignedIn,
    OwnerAppError,
    RoleForbidden,
)
from store.errors import StoreError
from video.errors import CameraError, LiveViewBusy

log = logging.getLogger("threshold.api")

PROBLEM_TYPE = "application/problem+json"

#: The title of each status the API answers with (docs/api.md lists the codes).
STATUS_TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Request body too large",
    431: "Request header fields too large",
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
    AccessCode.PACKAGE_MISMATCH: 403,
    AccessCode.CAMERA_UNAVAILABLE: 403,
    AccessCode.APPROVAL_DENIED: 403,
    AccessCode.APPROVAL_VOIDED: 409,
    AccessCode.GATEWAY_RESTARTED: 403,
    AccessCode.DENIED: 403,
    AccessCode.DOOR_BUSY: 409,
    AccessCode.LOCK_UNAVAILABLE: 503,
    AccessCode.STORAGE_UNAVAILABLE: 503,
    AccessCode.NOT_FOUND: 404,
    AccessCode.BAD_REQUEST: 400,
    AccessCode.NOT_AWAITING_APPROVAL: 409,
}

#: The HTTP status of every owner app refusal (docs/owner-app.md).
OWNER_APP_STATUS: dict[str, int] = {
    BadAppRequest.code: 400,
    EnrollmentRefused.code: 403,
    AssertionRefused.code: 403,
    NotSignedIn.code: 401,
    CsrfRefused.code: 403,
    RoleForbidden.code: 403,
    DeviceUnknown.code: 404,
    MediaUnknown.code: 404,
}


class Problem(Exception):
    """An answer other than success: raised anywhere below the problem middleware."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        #: End the connection after answering (its request was not read to the end).
        self.close = close
        self.extra = extra

    def response(self) -> web.Response:
        resp = problem_response(
            self.status, self.code, self.detail, headers=self.headers, **self.extra
        )
        if self.close:
            resp.force_close()
        return resp


def problem_response(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    body = {
        "type": f"urn:threshold:problem:{code}",
        "title": STATUS_TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    out = dict(headers or {})
    if "retry_after" in extra:
        out["Retry-After"] = str(max(1, int(extra["retry_after"] + 0.999)))
    return web.json_response(body, status=status, content_type=PROBLEM_TYPE, headers=out)


def access_status(refusal: AccessRefused) -> int:
    return ACCESS_STATUS[refusal.access_code]


def problem_of(exc: Exception, method: str, path: str) -> Problem:
    """The problem for an exception that reached the outermost middleware."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, DocumentRejected):
        return Problem(400, exc.code, exc.message)
    if isinstance(exc, AccessRefused):
        return Problem(access_status(exc), exc.code, exc.message)
    if isinstance(exc, OwnerAppError):
        return Problem(OWNER_APP_STATUS.get(exc.code, 400), exc.code, exc.message)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return Problem(413, "payload_too_large", "request body too large")
    if isinstance(exc, web.HTTPNotFound):
        return Problem(404, "not_found", f"no route {method} {path}")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        # RFC 9110 §15.5.6: a 405 names the methods the resource does allow.
        allow = ", ".join(sorted(exc.allowed_methods))
        return Problem(
            405, "method_not_allowed", f"{method} is not allowed here", headers={"Allow": allow}
        )
    if isinstance(exc, web.HTTPException):
        code = "bad_request" if exc.status == 400 else f"http_{exc.status}"
        return Problem(exc.status, code, exc.reason)
    if isinstance(exc, LiveViewBusy):
        return Problem(429, exc.code, exc.message, retry_after=5)
    if isinstance(exc, CameraError):
        return Problem(503, exc.code, exc.message)
    if isinstance(exc, StoreError):
        log.error("store error on %s %s: %s", method, path, exc.code)
        return Problem(503, "storage_unavailable", f"the gateway's store failed ({exc.code})")
    if isinstance(exc, LockError):
        log.error("lock error on %s %s: %s", method, path, exc.code)
        return Problem(503, "lock_unavailable", f"the lock failed ({exc.code})")
    log.error("internal error on %s %s", method, path, exc_info=exc)
    return Problem(500, "internal_error", "the gateway hit an internal error")
