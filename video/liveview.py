"""The owner's live view: MJPEG over HTTP (``multipart/x-mixed-replace``), at most 5 fps.

Why MJPEG and not fragmented MP4 for Media Source Extensions (docs/camera.md has the long
form): an ``<img>`` tag plays it in every browser, including iPhones without MSE, with no
JavaScript player; each part is the newest picture, so the latency is one frame, not one
fragment (a keyframe interval); and a slow phone connection skips pictures instead of
building a backlog. The price is decoding while someone watches, which only the owner does,
rarely, and never more than ``max_viewers`` at once.

:func:`mjpeg_handler` returns an aiohttp handler. It does no authentication: the service
mounts it on an owner-only route.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import av
from aiohttp import web

from video.camera import Camera
from video.errors import CameraUnavailable, LiveViewBusy
from video.packet import VideoPacket
from video.priority import background_executor
from video.snapshot import encode_jpeg, make_decoder, to_av_packet

BOUNDARY = "thresholdframe"
DEFAULT_MAX_FPS = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _LiveDecoder:
    """Decodes one viewer's packets (on a worker thread, one call at a time)."""

    def __init__(self, camera: Camera) -> None:
        self._camera = camera
        self._decoder: Any = None
        self._epoch: int | None = None

    def decode(self, packet: VideoPacket) -> Any:
        if packet.epoch != self._epoch:
            info = self._camera.source.info_for(packet.epoch)
            if info is None or not packet.keyframe:
                return None
            self._decoder = make_decoder(info)
            self._epoch = packet.epoch
        try:
            frames = self._decoder.decode(to_av_packet(packet))
        except av.FFmpegError:
            self._epoch = None  # wait for the next keyframe
            return None
        return frames[-1] if frames else None


def mjpeg_handler(
    camera: Camera,
    *,
    max_fps: float = DEFAULT_MAX_FPS,
    max_viewers: int = 2,
    on_open: Callable[[], Awaitable[None]] | None = None,
    on_close: Callable[[int, float], Awaitable[None]] | None = None,
) -> Handler:
    """An aiohttp handler streaming the camera as MJPEG. Mount it behind owner auth.

    Raises ``CameraUnavailable`` (not live) or ``LiveViewBusy`` before any byte is sent, for
    the service to turn into a problem+json response. ``on_open`` is awaited before the
    first byte (the gateway audits the viewing there: if it raises, nothing is streamed);
    ``on_close(frames, seconds)`` after the stream ends, however it ends.
    """
    if not 0 < max_fps <= DEFAULT_MAX_FPS:
        raise ValueError(f"max_fps must be in (0, {DEFAULT_MAX_FPS}]")
    period = 1.0 / max_fps
    viewers = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal viewers
        if not camera.live:
            raise CameraUnavailable("the camera is not live")
        if viewers >= max_viewers:
            raise LiveViewBusy(f"already {viewers} live viewers")
        # Counted before on_open's await, so that two requests racing past the check above
        # cannot make a third viewer.
        viewers += 1
        if on_open is not None:
            try:
                await on_open()
            except BaseException:
                viewers -= 1
                raise
        loop = asyncio.get_running_loop()
        preroll, sub = camera.source.subscribe(loop=loop, with_preroll=True, max_packets=60)
        opened_at = time.monotonic()
        frames_sent = 0
        # Decoding at background priority (video.priority): a viewer never slows a door.
        decoding = background_executor("camera-live")
        try:
            response = web.StreamResponse(
                headers={
                    "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                    "Cache-Control": "no-store",
                    "X-Content-Type-Options": "nosniff",
                }
            )
            await response.prepare(request)
            decoder = _LiveDecoder(camera)
            # Start at the newest keyframe of the pre-roll: a picture at once, no backlog.
            keys = [i for i, p in enumerate(preroll) if p.keyframe]
            backlog = list(preroll[keys[-1] :]) if keys else []
            next_due: float | None = None
            while True:
                packet = backlog.pop(0) if backlog else await sub.next()
                if packet is None:
                    break
                frame = await loop.run_in_executor(decoding, decoder.decode, packet)
                if frame is None or backlog:
                    continue
                stream_time = packet.dts_s
                if next_due is not None and stream_time < next_due:
                    continue
                next_due = stream_time + period
                jpeg = await loop.run_in_executor(decoding, encode_jpeg, frame)
                head = (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\nX-Frame-Time: {stream_time:.3f}\r\n\r\n"
                )
                try:
                    await response.write(head.encode() + jpeg + b"\r\n")
                except (ConnectionResetError, ConnectionError):
                    break
                frames_sent += 1
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response
        finally:
            sub.close()
            decoding.shutdown(wait=False)
            viewers -= 1
            if on_close is not None:
                await on_close(frames_sent, time.monotonic() - opened_at)

    return handler
