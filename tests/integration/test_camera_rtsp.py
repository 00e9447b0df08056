"""The camera against a real RTSP server (Debian's GStreamer RTSP server)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import av
import pytest

from groundwork.backoff import stepped_delay
from tests.support.rtsp import (
    RtspServerFactory,
    RtspTestServer,
    rtsp_server,
    rtsp_server_factory,
    until,
)
from video.camera import Camera, CameraConfig, CameraStall
from video.motion import MotionConfig
from video.source import RECONNECT_SCHEDULE_S, RtspSource, SourceConfig

__all__ = ["rtsp_server", "rtsp_server_factory"]  # fixtures, imported for pytest

pytestmark = pytest.mark.rtsp

READ_TIMEOUT_S = 1.0


def config(url: str, tmp_path: Path, **overrides: object) -> CameraConfig:
    settings: dict[str, object] = {
        "read_timeout_s": READ_TIMEOUT_S,
        "open_timeout_s": 3.0,
        "preroll_s": 2.0,
        "post_roll_s": 1.5,
        "motion": None,
    }
    settings.update(overrides)
    return CameraConfig(url=url, clip_dir=tmp_path / "clips", **settings)  # type: ignore[arg-type]


async def test_connects_and_reports_health(rtsp_server: RtspTestServer, tmp_path: Path) -> None:
    async with Camera(config(rtsp_server.url, tmp_path)) as camera:
        assert await camera.wait_live(10.0)
        # Two keyframes are needed to measure the interval: wait for them, bounded.
        await until(
            camera.source,
            lambda: None not in (camera.health().keyframe_interval_s, camera.health().fps),
            10,
        )
        health = camera.health()
        assert health.live
        assert health.keyframe_interval_s == pytest.approx(1.0, abs=0.1)
        assert health.fps == pytest.approx(15.0, rel=0.2)
        assert health.reconnects == 0
        assert health.last_packet_age_s is not None
        assert health.last_packet_age_s < 1.0
        info = camera.source.info
        assert info is not None
        assert (info.codec, info.width, info.height) == ("h264", 320, 240)
        jpeg = await camera.snapshot()
        assert jpeg.startswith(b"\xff\xd8")
        assert jpeg.endswith(b"\xff\xd9")


async def test_clip_starts_at_a_keyframe_and_covers_pre_and_post_roll(
    rtsp_server: RtspTestServer, tmp_path: Path
) -> None:
    async with Camera(config(rtsp_server.url, tmp_path)) as camera:
        assert await camera.wait_live(10.0)
        # Let the ring fill with the 2 s pre-roll (it holds at least that once the stream has).
        await until(camera.source, lambda: camera.source.ring_stats().span_s >= 2.0, 10)
        recording = await camera.start_clip("session-1")
        await asyncio.sleep(1.0)  # the visit itself: the door is open for a moment
        async with asyncio.timeout(15):
            result = await camera.finish_clip(recording)

    assert result.path.exists()
    assert result.path.stat().st_mode & 0o777 == 0o600
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert result.size_bytes == result.path.stat().st_size
    # The ring held >= 2 s on the stream's clock; preroll_s is measured on arrival times, which
    # jitter with scheduling, so allow about one frame (the test stream runs at 15 fps).
    assert result.preroll_s >= 2.0 - 0.07
    # pre-roll (>= 2 s) + visit (1 s) + post-roll (1.5 s), less the held-back last frame
    assert result.duration_s >= 4.35
    with av.open(str(result.path)) as clip:
        stream = clip.streams.video[0]
        packets = [p for p in clip.demux(stream) if p.size]
        assert packets[0].is_keyframe
        assert packets[0].dts == 0
    with av.open(str(result.path)) as clip:
        frames = list(clip.decode(video=0))
    assert len(frames) == result.frame_count == len(packets)
    assert frames[-1].time - frames[0].time == pytest.approx(result.duration_s - 1 / 15, abs=0.15)
    assert result.audit_fields()["sha256"] == result.sha256


async def test_reconnects_after_the_server_comes_back(
    rtsp_server: RtspTestServer, tmp_path: Path
) -> None:
    async with Camera(config(rtsp_server.url, tmp_path)) as camera:
        assert await camera.wait_live(10.0)
        await until(camera.source, lambda: bool(camera.source.latest_group()), 10)
        recording = await camera.start_clip("across-reconnect")
        stalls: list[CameraStall] = []
        camera.add_stall_listener(stalls.append)
        rtsp_server.kill()
        async with asyncio.timeout(2 * READ_TIMEOUT_S + 1):
            await camera.stalled.wait()
        assert not camera.live
        assert len(stalls) == 1
        await asyncio.to_thread(rtsp_server.start)
        back_at = time.monotonic()
        failures = camera.source.consecutive_failures
        assert 1 <= failures <= 5  # down for a few seconds: still on the 1 s steps
        # Live again within the current step, plus the open and the watch's tick.
        step = stepped_delay(failures, RECONNECT_SCHEDULE_S)
        within = step + camera.config.open_timeout_s + 0.5
        assert await camera.wait_live(within)
        assert time.monotonic() - back_at <= within
        assert camera.health().reconnects >= 1
        assert not camera.stalled.is_set()
        # The clip spans the outage: it goes on at the new connection's first keyframe.
        await until(
            camera.source, lambda: any(p.epoch > 1 for p in camera.source.latest_group()[:1]), 10
        )
        async with asyncio.timeout(10):
            result = await camera.finish_clip(recording, post_roll_s=0.5)
    assert result.reconnects == 1
    with av.open(str(result.path)) as clip:
        frames = list(clip.decode(video=0))
    assert len(frames) == result.frame_count
    times = [f.time for f in frames]
    assert times == sorted(times)


async def test_a_clip_started_while_the_camera_is_down_holds_no_stale_pre_roll(
    rtsp_server: RtspTestServer, tmp_path: Path
) -> None:
    from video.errors import ClipFailed

    async with Camera(config(rtsp_server.url, tmp_path)) as camera:
        assert await camera.wait_live(10.0)
        await until(camera.source, lambda: camera.source.ring_stats().span_s >= 1.0, 10)
        rtsp_server.kill()
        async with asyncio.timeout(2 * READ_TIMEOUT_S + 1):
            await camera.stalled.wait()
        # The ring still holds the seconds before the outage.
        assert camera.source.ring_stats().packets > 0
        recording = await camera.start_clip("while-down")
        with pytest.raises(ClipFailed):
            async with asyncio.timeout(10):
                await camera.finish_clip(recording, post_roll_s=0.3)
    assert not recording.path.exists()


async def test_a_frozen_server_stops_being_live_within_twice_the_read_timeout(
    rtsp_server: RtspTestServer, tmp_path: Path
) -> None:
    async with Camera(config(rtsp_server.url, tmp_path)) as camera:
        assert await camera.wait_live(10.0)
        await until(camera.source, lambda: bool(camera.source.latest_group()), 10)
        recording = await camera.start_clip("frozen")
        rtsp_server.freeze()
        frozen_at = time.monotonic()
        async with asyncio.timeout(2 * READ_TIMEOUT_S + 0.5):
            await camera.stalled.wait()
        detected = time.monotonic() - frozen_at
        assert detected <= 2 * READ_TIMEOUT_S + 0.3
        assert not camera.live
        rtsp_server.thaw()
        async with asyncio.timeout(10):
            result = await camera.finish_clip(recording, post_roll_s=0.0)
        assert result.frame_count > 0


async def test_ring_memory_bound_holds_at_high_bitrate(
    rtsp_server_factory: RtspServerFactory,
) -> None:
    # Snow (random noise) does not compress: the encoder runs at the full bitrate.
    server = rtsp_server_factory(
        width=640, height=480, fps=15, bitrate_kbps=8000, keyint=15, pattern="snow"
    )
    limit = 2_500_000  # about two groups of pictures at this bitrate
    source = RtspSource(
        SourceConfig(url=server.url, read_timeout_s=2.0, preroll_s=10.0, ring_max_bytes=limit)
    )
    _, sub = source.subscribe(max_packets=10_000)
    source.start()
    try:
        seen = 0
        peak = 0
        deadline = time.monotonic() + 15
        while seen < 3 * limit and time.monotonic() < deadline:
            packet = sub.get(2.0)
            if packet is not None:
                seen += packet.size
            peak = max(peak, source.ring_stats().bytes)
        assert seen >= 3 * limit, "the stream was not high-bitrate enough to test the bound"
        assert peak <= limit
        # The ring really filled up to near its bound (it did not just stay empty).
        assert peak > limit // 3
    finally:
        sub.close()
        assert source.stop()


async def test_motion_can_read_the_substream(
    rtsp_server_factory: RtspServerFactory, tmp_path: Path
) -> None:
    main = rtsp_server_factory(width=320, height=240)
    sub = rtsp_server_factory(width=160, height=120)  # the ball bounces: motion
    started = asyncio.Event()
    cfg = config(main.url, tmp_path, motion=MotionConfig(), motion_url=sub.url)
    async with Camera(cfg) as camera:
        camera.add_motion_listener(lambda e: started.set())
        async with asyncio.timeout(15):
            await started.wait()
        assert camera.motion_facts().enabled
        assert camera.source.info is not None
        assert camera.source.info.width == 320  # clips and snapshots keep the main stream


async def test_a_frozen_server_ends_the_blocked_read_and_the_reader_reconnects(
    rtsp_server: RtspTestServer,
) -> None:
    # Over TCP only the socket timeout (the RTSP `timeout` option) bounds a read; PyAV's
    # read timeout is off. A SIGSTOPped server must still end the reader's session within
    # twice the read timeout, and the reader must come back once the server does.
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    changes: list[float] = []

    def on_change() -> None:
        changes.append(time.monotonic())
        loop.call_soon_threadsafe(changed.set)

    source = RtspSource(
        SourceConfig(url=rtsp_server.url, read_timeout_s=READ_TIMEOUT_S, open_timeout_s=3.0)
    )
    source.add_listener(on_change)
    source.start()
    try:
        await until(source, lambda: bool(source.latest_group()), 10)
        assert len(changes) == 1  # connected
        rtsp_server.freeze()
        frozen_at = time.monotonic()
        async with asyncio.timeout(2 * READ_TIMEOUT_S + 2):
            while len(changes) < 2:
                changed.clear()
                await changed.wait()
        assert changes[1] - frozen_at <= 2 * READ_TIMEOUT_S + 0.3
        assert source.last_error is not None
        rtsp_server.thaw()
        await until(source, lambda: source.health().live, 20)
        assert source.health().reconnects >= 1
    finally:
        rtsp_server.thaw()
        assert await asyncio.to_thread(source.stop, 10)
