"""The LAN API's aiohttp application, assembled from its parts (docs/api.md).

The routes are :data:`gateway.api.routes.ROUTES` (which also makes ``/v1/openapi.json``); each
route's handler is found here by name, in the courier (:mod:`gateway.api.courier`), owner
(:mod:`gateway.api.owner`), camera (:mod:`gateway.api.camera`) and owner app
(:mod:`gateway.api.owner_app`) modules; the middlewares
are :mod:`gateway.api.middleware`, every error is a problem (:mod:`gateway.api.problems`), and
the connections are accepted and bounded by :mod:`gateway.api.listener`.

Owner routes (``/v1/owner/...``) are authenticated by an owner-key request signature
(:mod:`gateway.trust.owner_request`); a courier's ticket or proof is never accepted there.
"""

from __future__ import annotations

import ssl

from aiohttp import web

from gateway.api import courier, owner, owner_app, visitor
from gateway.api.camera import live_view, owner_cameras, owner_snapshot
from gateway.api.context import CTX, ApiContext, Handler
from gateway.api.listener import MAX_LINE, Listener
from gateway.api.middleware import MIDDLEWARES
from gateway.api.routes import ROUTES


def _handlers(ctx: ApiContext) -> dict[str, Handler]:
    # One live view handler for the owner's CLI and the app together: one viewer limit.
    camera_live = live_view(ctx)
    return {
        **owner_app.handlers(),
        **visitor.handlers(),
        "app_live_view": camera_live,
        "info": courier.info,
        "openapi": courier.openapi,
        "challenge": courier.challenge,
        "access": courier.access,
        "session": courier.session,
        "done": courier.done,
        "owner_events": owner.owner_events,
        "owner_sessions": owner.owner_sessions,
        "owner_approvals": owner.owner_approvals,
        "owner_revocations": owner.owner_revocations,
        "owner_lock": owner.owner_lock,
        "owner_clock_reset": owner.owner_clock_reset,
        "owner_cameras": owner_cameras,
        "owner_live_view": camera_live,
        "owner_snapshot": owner_snapshot,
    }


def build_app(ctx: ApiContext) -> web.Application:
    app = web.Application(
        middlewares=MIDDLEWARES,
        client_max_size=ctx.max_body_bytes,
        handler_args={"max_field_size": MAX_LINE, "max_line_size": MAX_LINE},
    )
    app[CTX] = ctx
    app.on_response_prepare.append(owner_app.security_headers)
    app.on_response_prepare.append(visitor.visit_headers)
    app.on_shutdown.append(owner_app.end_streams)
    handlers = _handlers(ctx)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, handlers[route.name], name=route.name)
    return app


async def serve(
    ctx: ApiContext, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> Listener:
    """Build the app and listen on ``host:port`` under ``ctx.limits``; ``await stop()`` it.

    Raises OSError when the address cannot be bound.
    """
    runner = web.AppRunner(
        build_app(ctx), access_log=None, shutdown_timeout=1.0, handle_signals=False
    )
    await runner.setup()
    listener = Listener(runner, ctx.limits, ssl_context)
    try:
        await listener.start(host, port)
    except OSError:
        await runner.cleanup()
        raise
    return listener
