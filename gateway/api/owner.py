"""The owner's routes under ``/v1/owner/`` (the camera's are in :mod:`gateway.api.camera`).

Only reached once the owner-signature middleware has verified the request
(:mod:`gateway.trust.owner_request`): the household's history, the sessions, approvals, revocation
lists, the manual lock and the reset of a time floor found ahead of the clock.
"""

from __future__ import annotations

import re

from aiohttp import web

from gateway.api.bodies import json_body
from gateway.api.context import CTX
from gateway.api.problems import Problem
from gateway.api.routes import ROUTE_BY_NAME

#: ``since`` is an audit index: SQLite's integers stop at 2**63 - 1.
MAX_SINCE = 2**63 - 1
MAX_LIMIT = 1000
_DECIMAL = re.compile(r"[0-9]{1,19}")


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in ``[low, high]``: ASCII digits only (``int()`` alone takes
    signs, underscores, spaces and every script's digits), at most 19 of them."""
    return query_int(request.query.get(name), name, default, low, high)


def query_int(text: str | None, name: str, default: int, low: int, high: int) -> int:
    """The pure half of :func:`_query_int` (tests/fuzz feeds it directly)."""
    if text is None:
        return default
    if _DECIMAL.fullmatch(text) is None or not low <= int(text) <= high:
        raise Problem(400, "bad_request", f"{name} must be an integer from {low} to {high}")
    return int(text)


async def owner_events(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    since = _query_int(request, "since", 0, 0, MAX_SINCE)
    limit = _query_int(request, "limit", 100, 1, MAX_LIMIT)
    events = await ctx.service.events(since, limit)
    return web.json_response({"events": events})


async def owner_sessions(request: web.Request) -> web.Response:
    views = [view.to_json() for view in request.app[CTX].service.sessions()]
    return web.json_response({"sessions": views})


async def owner_approvals(request: web.Request) -> web.Response:
    body = await json_body(request, ROUTE_BY_NAME["owner_approvals"])
    view = await request.app[CTX].service.approve(body["approval"])
    return web.json_response(view.to_json())


async def owner_revocations(request: web.Request) -> web.Response:
    body = await json_body(request, ROUTE_BY_NAME["owner_revocations"])
    seq = await request.app[CTX].service.set_revocations(body["revocations"])
    return web.json_response({"seq": seq})


async def owner_lock(request: web.Request) -> web.Response:
    body = await json_body(request, ROUTE_BY_NAME["owner_lock"])
    status = await request.app[CTX].service.owner_lock(body["door"], body["action"])
    return web.json_response(
        {"door": body["door"], "lock": status.lock.value, "door_state": status.door.value}
    )


async def owner_clock_reset(request: web.Request) -> web.Response:
    reset = await request.app[CTX].service.reset_time_floor()
    return web.json_response(reset.to_json())
