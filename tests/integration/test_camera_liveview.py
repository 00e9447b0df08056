"""The owner's MJPEG live view over real HTTP on loopback, from a file camera."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from video.camera import Camera, CameraConfig
from video.errors import CameraError
from video.liveview import BOUNDARY, mjpeg_handler
from video.testvideo import generate_test_video


async def read_part(reader: aiohttp.StreamReader) -> tuple[dict[str, str], bytes]:
    line = await reader.readline()
    while line in (b"\r\n", b""):
        line = await reader.readline()
    assert line.strip() == f"--{BOUNDARY}".encode()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) != b"\r\n":
        name, value = line.decode().split(":", 1)
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return headers, body


@pytest.fixture
async def served_camera(tmp_path: Path):  # type: ignore[no-untyped-def]
    video = generate_test_video(tmp_path / "v.mp4", seconds=3.0, fps=15, keyframe_interval=15)
    camera = Camera(CameraConfig(url=str(video), clip_dir=tmp_path / "clips", motion=None))
    await camera.start()

    @web.middleware
    async def camera_errors(request: web.Request, handler):  # type: ignore[no-untyped-def]
        try:
            return await handler(request)
        except CameraError as exc:
            return web.json_response({"code": exc.code}, status=503)

    app = web.Application(middlewares=[camera_errors])
    app.router.add_get("/live", mjpeg_handler(camera, max_fps=5.0, max_viewers=1))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield camera, f"http://127.0.0.1:{port}/live"
    await runner.cleanup()
    await camera.close()


async def test_streams_jpegs_at_most_five_per_second(served_camera) -> None:  # type: ignore[no-untyped-def]
    camera, url = served_camera
    assert await camera.wait_live(5.0)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        times = []
        for _ in range(6):
            headers, body = await read_part(response.content)
            assert body[:2] == b"\xff\xd8"
            assert body[-2:] == b"\xff\xd9"
            times.append(float(headers["x-frame-time"]))
        # A second viewer is refused while the first watches (max_viewers=1).
        async with http.get(url) as second:
            assert second.status == 503
            assert (await second.json())["code"] == "live_view_busy"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.2 - 1e-6
    assert max(gaps) < 0.5
    async with asyncio.timeout(5):  # the viewer slot is given back after a disconnect
        while True:
            async with aiohttp.ClientSession() as http, http.get(url) as again:
                if again.status == 200:
                    break
            await asyncio.sleep(0.05)


async def test_nothing_is_streamed_when_the_viewing_cannot_be_recorded(tmp_path: Path) -> None:
    """on_open failing (the gateway's audit entry) refuses the viewer and frees the slot."""
    video = generate_test_video(tmp_path / "v.mp4", seconds=3.0, fps=15, keyframe_interval=15)
    camera = Camera(CameraConfig(url=str(video), clip_dir=tmp_path / "clips", motion=None))
    await camera.start()
    opened: list[bool] = []
    closed = asyncio.Event()
    closes: list[int] = []

    class AuditDown(Exception):
        pass

    async def on_open() -> None:
        opened.append(True)
        if len(opened) == 1:
            raise AuditDown

    async def on_close(frames: int, seconds: float) -> None:
        closes.append(frames)
        closed.set()

    @web.middleware
    async def audit_errors(request: web.Request, handler):  # type: ignore[no-untyped-def]
        try:
            return await handler(request)
        except AuditDown:
            return web.json_response({"code": "storage_unavailable"}, status=503)

    app = web.Application(middlewares=[audit_errors])
    handler = mjpeg_handler(camera, max_viewers=1, on_open=on_open, on_close=on_close)
    app.router.add_get("/live", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/live"
    try:
        assert await camera.wait_live(5.0)
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.get(url) as refused:
                assert refused.status == 503
                assert (await refused.json())["code"] == "storage_unavailable"
            assert closes == []  # never opened, so never closed
            # The refused request did not keep the only viewer slot.
            async with http.get(url) as watching:
                assert watching.status == 200
                await read_part(watching.content)
        async with asyncio.timeout(10):
            await closed.wait()
        assert closes[0] >= 1
    finally:
        await runner.cleanup()
        await camera.close()
