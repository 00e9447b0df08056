"""The owner's routes under ``/v1/owner/`` (the camera's are in :mod:`gateway.api.camera`).

Only reached once the owner-signature middleware has verified the request
(:mod:`gateway.api.owner_auth`): the household's history, the sessions, approvals, revocation
lists and the manual lock.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.bodies import json_body
from gateway.api.context import CTX
from gateway.api.problems import Problem
from gateway.api.routes import ROUTE_BY_NAME


async def owner_events(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    try:
        since = int(request.query.get("since", "0"))
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise Problem(400, "bad_request", "since and limit must be integers") from None
    if since < 0 or not 1 <= limit <= 1000:
        raise Problem(400, "bad_request", "since >= 0 and 1 <= limit <= 1000")
    events = await ctx.service.ledger.events(since, limit)
    return web.json_response({"events": events})


async def owner_sessions(request: web.Request) -> web.Response:
    service = request.app[CTX].service
    views = [runner.view().to_json() for runner in list(service.sessions.values())]
    return web.json_response({"sessions": views[-200:]})


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
