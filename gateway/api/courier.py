"""The routes anyone on the LAN may call: discovery, the spec, challenges, access and done.

A courier's (or cleaner's) app finds the gateway (``/v1/info``), takes a challenge, presents
its ticket with a proof of possession, polls its session and says it is out. Decisions are the
access service's; these handlers only parse, rate-limit by ticket and shape the answer.
"""

from __future__ import annotations

import time

from aiohttp import web

from gateway.access.admission import AccessRequest
from gateway.api.bodies import b64u_field, json_body, peek_ticket_id
from gateway.api.context import ARRIVED, CTX
from gateway.api.listener import connection_of
from gateway.api.problems import Problem
from gateway.api.routes import API_VERSION, ROUTE_BY_NAME, openapi_document
from gateway.trust.base64url import b64u_encode

MAX_TOKEN_CHARS = 4096
MAX_PACKAGE_CODE = 256


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
    return web.json_response(openapi_document())


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
    body = await json_body(request, ROUTE_BY_NAME["access"])
    token = body["ticket"]
    if len(token) > MAX_TOKEN_CHARS:
        # Check 1 of docs/tickets.md, section 6 (size): a ticket's refusal, 403 like the rest.
        raise Problem(403, "bad_token", f"tickets are at most {MAX_TOKEN_CHARS} characters")
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
        nonce=b64u_field(body, "nonce", 32),
        proof=b64u_field(body, "proof", 64),
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
    _in_session(request)
    return web.json_response(view.to_json())


def _in_session(request: web.Request) -> None:
    """The client knew a session's secret id: its connection joins the reserve."""
    conn = connection_of(request)
    if conn is not None:
        conn.privilege()


async def done(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await json_body(request, ROUTE_BY_NAME["done"])
    view = await ctx.service.done(
        request.match_info["session"],
        b64u_field(body, "nonce", 32),
        b64u_field(body, "proof", 64),
    )
    _in_session(request)
    out = view.to_json()
    if view.state == "closed":
        out["receipt"] = await ctx.service.receipt(view.id)
    return web.json_response(out)
