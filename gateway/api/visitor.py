"""Keys for people over HTTP (docs/visitors.md): the root key's household-issuer routes, the
owner app's invitation routes and the visitor's page with its claim and renewal routes.

Handlers parse and call :class:`gateway.owner.invitations.Visitors`. The owner app's routes
(``/v1/app/invitations...``) sit behind the app's session, CSRF token and origin
(:func:`gateway.api.owner_app.app_session`); inviting also needs a fresh passkey assertion
over exactly the terms (:meth:`gateway.owner.app.OwnerApp.authorise`). The visitor's routes
(``/visit/``, ``/v1/visit/...``) have no session: the link's secret, then the key, are what
count; a POST from another origin is refused. The page and its files carry the same strict
Content-Security-Policy as the owner app: nothing from anywhere else.
"""

from __future__ import annotations

import hashlib
import io
import json
from importlib import resources
from typing import Any

import segno
from aiohttp import web

from gateway.api.bodies import b64u_field, json_body, read_body
from gateway.api.context import APP_SESSION, CTX, Handler
from gateway.api.owner_app import SECURITY_HEADERS, Asset, owner_app_of
from gateway.api.problems import Problem
from gateway.api.routes import ROUTE_BY_NAME
from gateway.owner.acts import Act, ActKind
from gateway.owner.errors import BadAppRequest
from gateway.owner.household import HouseholdUncertified
from gateway.owner.invitations import VisitorRefused, Visitors

VISIT_PREFIXES = ("/visit/", "/v1/visit/")
_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
}


def visitors_of(request: web.Request) -> Visitors:
    """The running invitations; a 404 when the gateway runs without the owner app."""
    visitors = request.app[CTX].visitors
    if visitors is None:
        raise Problem(404, "not_found", "keys for people need the owner app ([app] enabled)")
    return visitors


async def _object_body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    """The app's JSON body (objects inside, unlike the courier's flat string bodies)."""
    try:
        body = json.loads((await read_body(request)).decode("utf-8"))
    except RecursionError:
        raise BadAppRequest("malformed JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadAppRequest(f"malformed JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadAppRequest("the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise BadAppRequest(f"unknown field {sorted(unknown)[0]!r}")
    return body


def _refused(exc: VisitorRefused) -> Problem:
    return Problem(exc.status, exc.code, exc.message)


def load_page() -> dict[str, Asset]:
    """The visitor's page and its files (``gateway/web/visit``), read once."""
    out = {}
    for f in resources.files("gateway.web.visit").iterdir():
        kind = _TYPES.get(f.name.rsplit(".", 1)[-1])
        if f.is_file() and kind is not None:
            body = f.read_bytes()
            out[f.name] = Asset(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return out


def _check_origin(request: web.Request, visitors: Visitors) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin != visitors.origin():
        raise Problem(403, "csrf_refused", "requests come from the gateway's own page only")


async def visit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The page's Content-Security-Policy and friends (an ``on_response_prepare`` hook)."""
    if request.path.startswith(VISIT_PREFIXES):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/v1/"):
            response.headers.setdefault("Cache-Control", "no-store")


def handlers() -> dict[str, Handler]:
    """The handler of every route of :data:`gateway.api.routes.VISITOR_ROUTES`, by name."""
    page = load_page()

    def serve(request: web.Request, name: str) -> web.StreamResponse:
        asset = page.get(name)
        if asset is None:
            raise Problem(404, "not_found", f"no page file {name!r}")
        headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == asset.etag:
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=asset.body, headers={**headers, "Content-Type": asset.content_type}
        )

    # The root key's routes (the owner_signature middleware has checked the signature).

    async def household(request: web.Request) -> web.StreamResponse:
        return web.json_response(visitors_of(request).describe())

    async def certify(request: web.Request) -> web.StreamResponse:
        body = await json_body(request, ROUTE_BY_NAME["owner_household_certify"])
        return web.json_response(await visitors_of(request).certify(body["certificate"]))

    # The owner app's routes (the app_session middleware has checked the session).

    async def invitation_options(request: web.Request) -> web.StreamResponse:
        body = await _object_body(request, {"terms"})
        visitors = visitors_of(request)
        terms = visitors.terms(body["terms"])
        try:
            visitors.household.check_terms(terms.doors, terms.kind.purpose, terms.schedule)
        except HouseholdUncertified as exc:
            raise Problem(409, exc.code, exc.message) from None
        act = Act(ActKind.INVITE, terms.digest())
        out = await owner_app_of(request).act_options(request[APP_SESSION], act)
        return web.json_response(out)

    async def invite(request: web.Request) -> web.StreamResponse:
        body = await _object_body(request, {"terms", "ceremony", "credential"})
        visitors = visitors_of(request)
        terms = visitors.terms(body["terms"])
        app = owner_app_of(request)
        act = Act(ActKind.INVITE, terms.digest())
        device = await app.authorise(
            request[APP_SESSION], act, body["ceremony"], body["credential"]
        )
        made = await visitors.invite(terms, device.device_id, device.name)
        qr = segno.make(made["link"], error="m")
        svg = io.BytesIO()
        qr.save(svg, kind="svg", scale=5, border=2, xmldecl=False, title="Invitation QR code")
        return web.json_response({**made, "qr_svg": svg.getvalue().decode()}, status=201)

    async def invitations(request: web.Request) -> web.StreamResponse:
        visitors = visitors_of(request)
        return web.json_response(
            {"zone": visitors.zone.key, "invitations": await visitors.invitations()}
        )

    async def revoke(request: web.Request) -> web.StreamResponse:
        session = request[APP_SESSION]
        try:
            out = await visitors_of(request).revoke(
                request.match_info["invitation"], f"device:{session.device_id}"
            )
        except VisitorRefused as exc:
            raise _refused(exc) from None
        return web.json_response(out)

    # The visitor's page and routes.

    async def visit_page(request: web.Request) -> web.StreamResponse:
        visitors_of(request)
        return serve(request, "index.html")

    async def visit_asset(request: web.Request) -> web.StreamResponse:
        visitors_of(request)
        return serve(request, request.match_info["asset"])

    async def preview(request: web.Request) -> web.StreamResponse:
        visitors = visitors_of(request)
        _check_origin(request, visitors)
        body = await json_body(request, ROUTE_BY_NAME["visit_preview"])
        try:
            return web.json_response(await visitors.preview(body["token"]))
        except VisitorRefused as exc:
            raise _refused(exc) from None

    async def claim(request: web.Request) -> web.StreamResponse:
        visitors = visitors_of(request)
        _check_origin(request, visitors)
        body = await json_body(request, ROUTE_BY_NAME["visit_claim"])
        key = b64u_field(body, "public_key", 32)
        try:
            return web.json_response(await visitors.claim(body["token"], key), status=201)
        except VisitorRefused as exc:
            raise _refused(exc) from None

    async def challenge(request: web.Request) -> web.StreamResponse:
        visitors = visitors_of(request)
        _check_origin(request, visitors)
        return web.json_response({"nonce": visitors.challenge()}, status=201)

    async def renew(request: web.Request) -> web.StreamResponse:
        visitors = visitors_of(request)
        _check_origin(request, visitors)
        body = await json_body(request, ROUTE_BY_NAME["visit_renew"])
        try:
            mode = body.get("mode", "renew")
            if mode not in ("renew", "status"):
                raise Problem(400, "bad_request", "mode is renew or status")
            out = await visitors.renew(
                body["invitation"], body["nonce"], body["proof"], issue=mode == "renew"
            )
        except VisitorRefused as exc:
            raise _refused(exc) from None
        return web.json_response(out)

    return {
        "owner_household": household,
        "owner_household_certify": certify,
        "app_invitation_options": invitation_options,
        "app_invite": invite,
        "app_invitations": invitations,
        "app_invitation_revoke": revoke,
        "visit_page": visit_page,
        "visit_asset": visit_asset,
        "visit_preview": preview,
        "visit_claim": claim,
        "visit_challenge": challenge,
        "visit_renew": renew,
    }
