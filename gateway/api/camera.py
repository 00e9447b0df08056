"""The owner's view into the home: each camera's live MJPEG stream and a snapshot.

With several cameras (``[[camera]]``), ``?camera=NAME`` picks one; without it, the first.
Looking is itself an event of the household's log: each is audited (naming the camera)
before any picture leaves the gateway, and without a written entry nothing is shown.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from gateway.access.session import AuditValue
from gateway.api.context import CTX, ApiContext, Handler
from gateway.api.problems import Problem
from store.errors import StoreError
from video.camera import Camera
from video.errors import CameraUnavailable
from video.liveview import mjpeg_handler

log = logging.getLogger("threshold.api")

#: A camera's name as the configuration allows it (gateway.app.config.CAMERA_NAME_RE).
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def chosen_camera(ctx: ApiContext, request: web.Request) -> tuple[str | None, Camera]:
    """The camera ``?camera=NAME`` names (404 ``unknown_camera`` if none), else the first."""
    name = request.query.get("camera")
    if name is None:
        if ctx.camera is None:
            raise CameraUnavailable("no camera is configured")
        return next((n for n, c in ctx.cameras.items() if c is ctx.camera), None), ctx.camera
    if _NAME.fullmatch(name) is None:
        raise Problem(400, "bad_request", "camera must be a camera's name (GET /v1/owner/cameras)")
    camera = ctx.cameras.get(name)
    if camera is None:
        # The detail names the cameras there are, never what the client sent.
        known = ", ".join(sorted(ctx.cameras)) or "none"
        raise Problem(404, "unknown_camera", f"no camera of that name (cameras: {known})")
    return name, camera


async def owner_cameras(request: web.Request) -> web.Response:
    """Every camera, so the owner's app can offer them: name, doors watched, live."""
    ctx = request.app[CTX]
    doors = sorted(ctx.service.doors)
    cameras = [
        {
            "name": name,
            "doors": list(ctx.camera_doors.get(name) or doors),
            "live": camera.live,
        }
        for name, camera in ctx.cameras.items()
    ]
    return web.json_response({"cameras": cameras})


async def owner_snapshot(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    name, camera = chosen_camera(ctx, request)
    jpeg = await camera.snapshot()
    # Looking into the home is itself an event of the household's log; no entry, no picture.
    await ctx.service.ledger.record(
        "camera.snapshot_viewed", {"size_bytes": len(jpeg), "camera": name}
    )
    return web.Response(
        body=jpeg,
        content_type="image/jpeg",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def audited_live_view(ctx: ApiContext) -> Handler:
    """The MJPEG live view, with an audit entry before the first picture and one at the end.

    If the opening entry cannot be written (the store is down), nothing is streamed: the
    household's log shows every time someone looked into the home.
    """
    assert ctx.camera is not None
    cameras = dict(ctx.cameras) or {"": ctx.camera}

    def view(name: str, camera: Camera) -> Handler:
        async def opened() -> None:
            await ctx.service.ledger.record("camera.live_view_started", {"camera": name or None})

        async def closed(frames: int, seconds: float) -> None:
            body: dict[str, AuditValue] = {
                "frames": frames,
                "duration_ms": round(seconds * 1000),
                "camera": name or None,
            }
            try:
                await ctx.service.ledger.record("camera.live_view_ended", body)
            except StoreError as exc:
                log.error("audit entry camera.live_view_ended not recorded (%s)", exc.code)

        return mjpeg_handler(camera, on_open=opened, on_close=closed)

    # One handler per camera: each counts its own viewers (each costs a decoder).
    views = {id(camera): view(name, camera) for name, camera in cameras.items()}

    async def handler(request: web.Request) -> web.StreamResponse:
        _, camera = chosen_camera(ctx, request)
        return await views[id(camera)](request)

    return handler


async def no_camera(request: web.Request) -> web.StreamResponse:
    raise CameraUnavailable("no camera is configured")


def live_view(ctx: ApiContext) -> Handler:
    """The live view's handler: audited when a camera is configured, else always 503."""
    return audited_live_view(ctx) if ctx.camera is not None else no_camera
