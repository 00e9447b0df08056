"""Keys for people over HTTP (docs/visitors.md): the root key's household-issuer routes, the
owner app's invitation routes and the visitor's page with its claim, renewal and status
routes. Handlers parse and call :class:`gateway.owner.invitations.Visitors`; nothing else.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.bodies import json_body
from gateway.api.context import CTX, Handler
from gateway.api.problems import Problem
from gateway.api.routes import ROUTE_BY_NAME
from gateway.owner.invitations import Visitors


def visitors_of(request: web.Request) -> Visitors:
    """The running invitations; a 404 when the gateway runs without the owner app."""
    visitors = request.app[CTX].visitors
    if visitors is None:
        raise Problem(404, "not_found", "keys for people need the owner app ([app] enabled)")
    return visitors


def handlers() -> dict[str, Handler]:
    """The handler of every route of :data:`gateway.api.routes.VISITOR_ROUTES`, by name."""

    async def household(request: web.Request) -> web.StreamResponse:
        return web.json_response(visitors_of(request).describe())

    async def certify(request: web.Request) -> web.StreamResponse:
        body = await json_body(request, ROUTE_BY_NAME["owner_household_certify"])
        return web.json_response(await visitors_of(request).certify(body["certificate"]))

    return {"owner_household": household, "owner_household_certify": certify}
