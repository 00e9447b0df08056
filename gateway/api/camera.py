"""The owner's view into the home: the camera's live MJPEG stream and a snapshot.

Looking is itself an event of the household's log: each is audited before any picture leaves
the gateway, and without a written entry nothing is shown.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.access.session import AuditValue
from gateway.api.context import CTX, ApiContext, Handler
from store.errors import StoreError
from video.errors import CameraUnavailable
from video.liveview import mjpeg_handler

log = logging.getLogger("threshold.api")


async def owner_snapshot(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    camera = ctx.camera
    if camera is None:
        raise CameraUnavailable("no camera is configured")
    jpeg = await camera.snapshot()
    # Looking into the home is itself an event of the household's log; no entry, no picture.
    await ctx.service.ledger.record("camera.snapshot_viewed", {"size_bytes": len(jpeg)})
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

    async def opened() -> None:
        await ctx.service.ledger.record("camera.live_view_started", {})

    async def closed(frames: int, seconds: float) -> None:
        body: dict[str, AuditValue] = {"frames": frames, "duration_ms": round(seconds * 1000)}
        try:
            await ctx.service.ledger.record("camera.live_view_ended", body)
        except StoreError as exc:
            log.error("audit entry camera.live_view_ended not recorded (%s)", exc.code)

    return mjpeg_handler(ctx.camera, on_open=opened, on_close=closed)


async def no_camera(request: web.Request) -> web.StreamResponse:
    raise CameraUnavailable("no camera is configured")


def live_view(ctx: ApiContext) -> Handler:
    """The live view's handler: audited when a camera is configured, else always 503."""
    return audited_live_view(ctx) if ctx.camera is not None else no_camera
