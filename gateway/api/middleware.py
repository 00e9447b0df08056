"""The LAN API's middlewares, in the order a request meets them (:data:`MIDDLEWARES`).

1. ``problems``: outermost; every exception becomes a problem+json answer (never a traceback),
   and the connection learns where its request is (:mod:`gateway.api.listener`).
2. ``rate_limit``: the per-address token bucket over all routes.
3. ``body``: the whole body is read, under the size cap and a read deadline, *before*
   admission: a slow client holds its own connection, never one of the few admission slots
   (issue 11 #8).
4. ``admission``: at most a few requests handled at once (FIFO), so a flood cannot starve
   the lock's Bluetooth exchange of event-loop turns; long-lived streams are exempt.
5. ``owner_signature``: ``/v1/owner/`` routes need a fresh owner request signature.
6. ``app_session``: ``/v1/app/`` routes need the owner app's session cookie, and a POST its
   CSRF token and the app's origin (:mod:`gateway.api.owner_app`).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.web import RequestPayloadError

from gateway.api.bodies import read_body
from gateway.api.context import ARRIVED, CTX, Handler
from gateway.api.listener import connection_of
from gateway.api.owner_app import app_session
from gateway.api.problems import Problem, problem_of
from gateway.api.routes import STREAMING_PATHS
from gateway.trust.owner_request import NONCE_HEADER, SIGNATURE_HEADER, TIME_HEADER, OwnerAuthError


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[ARRIVED] = time.perf_counter()
    conn = connection_of(request)
    if conn is not None:
        conn.routed()
    code = "ok"
    try:
        response = await handler(request)
    except Exception as exc:
        problem = problem_of(exc, request.method, request.path)
        code = problem.code
        response = problem.response()
    finally:
        if conn is not None:
            conn.answered()
    on_answer = request.app[CTX].on_answer
    if on_answer is not None:
        resource = request.match_info.route.resource
        # The route's template, never the path: a path carries session ids.
        on_answer("unmatched" if resource is None else resource.canonical, response.status, code)
    return response


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
async def body(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.can_read_body:
        deadline = request.app[CTX].limits.body_s
        try:
            async with asyncio.timeout(deadline):
                await read_body(request)
        except TimeoutError:
            raise Problem(
                408, "request_timeout", f"the body did not arrive within {deadline:g} s", close=True
            ) from None
        except (ConnectionError, RequestPayloadError):
            # The client went away (or its place was given to another) mid-body: nobody is
            # left to answer, and it is not the gateway's error.
            raise Problem(400, "bad_request", "the body was cut short", close=True) from None
    return await handler(request)


@web.middleware
async def admission(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in STREAMING_PATHS:
        # A live view lasts as long as the owner watches: holding an admission slot for it
        # would starve the courier routes. Its own viewer limit bounds it instead.
        return await handler(request)
    async with request.app[CTX].admission:
        conn = connection_of(request)
        if conn is not None:
            conn.admitted()
        return await handler(request)


@web.middleware
async def owner_signature(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/owner/") or request.match_info.http_exception:
        # No such route or method: the 404 or 405 (with its Allow) says so, as it does for
        # every other path; the spec names the owner routes anyway.
        return await handler(request)
    ctx = request.app[CTX]
    raw = await read_body(request)
    present = {
        name: value
        for name in (TIME_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
        if (value := request.headers.get(name)) is not None
    }
    try:
        ctx.owner_verifier.verify(request.method, request.raw_path, raw, present, ctx.wall_clock())
    except OwnerAuthError as exc:
        raise Problem(401, "unauthorized", exc.message) from None
    conn = connection_of(request)
    if conn is not None:
        conn.privilege()
    return await handler(request)


MIDDLEWARES = (problems, rate_limit, body, admission, owner_signature, app_session)
