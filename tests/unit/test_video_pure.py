"""The camera's small pure parts: backoff, health, retention planning, the subscription."""

from __future__ import annotations

import asyncio
import threading
from fractions import Fraction
from pathlib import Path

import pytest

from groundwork.backoff import stepped_delay
from video.health import HealthTracker, StreamState
from video.packet import VideoPacket
from video.retention import StoredClip, plan_retention
from video.source import RECONNECT_SCHEDULE_S, redact_url
from video.subscription import PacketSubscription


def test_reconnect_follows_go2rtc() -> None:
    steps = [stepped_delay(n, RECONNECT_SCHEDULE_S) for n in range(1, 11)]
    assert steps == [1, 1, 1, 1, 1, 5, 10, 60, 60, 60]
    assert stepped_delay(1000, RECONNECT_SCHEDULE_S) == 60


def test_live_means_a_packet_within_twice_the_keyframe_interval() -> None:
    h = HealthTracker(max_silence_s=10.0, assumed_keyframe_interval_s=2.0)
    assert not h.snapshot(0.0).live  # never connected
    h.on_connected()
    assert not h.snapshot(0.0).live  # connected, no packet yet
    for i in range(31):  # 15 fps, a keyframe every 0.5 s
        h.on_packet(i / 15, i / 15, i % 14 == 0)
    # Keyframes every 14 frames = 0.933 s
    snap = h.snapshot(2.0)
    assert snap.keyframe_interval_s == pytest.approx(14 / 15)
    assert snap.fps == pytest.approx(15.0)
    assert snap.live_window_s == pytest.approx(28 / 15)
    assert h.snapshot(2.0 + 28 / 15 - 0.01).live
    assert not h.snapshot(2.0 + 28 / 15 + 0.01).live
    h.on_disconnected()
    assert h.snapshot(2.0).state is StreamState.DISCONNECTED
    assert not h.snapshot(2.0).live
    h.on_connected()
    assert h.snapshot(2.0).reconnects == 1


def test_a_stale_packet_flushed_after_a_freeze_does_not_look_live() -> None:
    h = HealthTracker(max_silence_s=10.0)
    h.on_connected()
    for i in range(46):  # 3 s at 15 fps, keyframe every second, on time
        h.on_packet(100 + i / 15, i / 15, i % 15 == 0)
    # Frozen at 103.0; at 105.0 the demuxer's read times out and it flushes the last frame
    # (stream time 3.067) it was holding.
    h.on_packet(105.0, 46 / 15, False)
    snap = h.snapshot(105.0)
    assert snap.last_packet_age_s == 0.0
    assert snap.stream_age_s is not None
    assert snap.stream_age_s > 1.8
    assert not h.snapshot(105.2).live


def test_a_slow_camera_clock_is_tolerated() -> None:
    h = HealthTracker(max_silence_s=10.0)
    h.on_connected()
    for i in range(15 * 120):  # two minutes of a camera whose clock runs 2 % slow
        h.on_packet(i / 15, (i / 15) * 0.98, i % 15 == 0)
        assert h.snapshot(i / 15).live


def test_the_live_window_is_capped() -> None:
    h = HealthTracker(max_silence_s=3.0)
    h.on_connected()
    h.on_packet(0.0, 0.0, True)
    h.on_packet(10.0, 10.0, True)  # a 10 s keyframe interval
    assert h.live_window_s() == 3.0
    assert not h.snapshot(13.5).live


def test_retention_deletes_oldest_first_and_spares_clips_in_progress() -> None:
    clips = [StoredClip(Path(f"/c/{i}.mp4"), 100, float(i)) for i in range(5)]
    assert plan_retention(clips, 500) == []
    assert [c.path.name for c in plan_retention(clips, 300)] == ["0.mp4", "1.mp4"]
    kept = plan_retention(clips, 250, keep=[Path("/c/0.mp4")])
    assert [c.path.name for c in kept] == ["1.mp4", "2.mp4", "3.mp4"]


def test_redact_url_hides_credentials() -> None:
    assert redact_url("rtsp://admin:hunter2@10.0.0.5:554/s1") == "rtsp://10.0.0.5:554/s1"
    assert redact_url("rtsp://10.0.0.5/s1") == "rtsp://10.0.0.5/s1"


def _packet(i: int) -> VideoPacket:
    return VideoPacket(b"p", i, i, Fraction(1, 15), i == 0, float(i), 1)


def test_a_full_subscription_drops_and_counts_without_blocking() -> None:
    sub = PacketSubscription(max_packets=3)
    results = [sub.offer(_packet(i)) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert sub.dropped == 2
    got = [sub.get(0) for _ in range(4)]
    assert [p.dts if p else None for p in got] == [0, 1, 2, None]


async def test_an_async_consumer_is_woken_from_another_thread() -> None:
    sub = PacketSubscription(loop=asyncio.get_running_loop())
    thread = threading.Thread(target=lambda: [sub.offer(_packet(i)) for i in range(10)])
    thread.start()
    async with asyncio.timeout(5):
        got = [await sub.next() for _ in range(10)]
    thread.join(5)
    assert [p.dts for p in got if p] == list(range(10))
    sub.close()
    async with asyncio.timeout(5):
        assert await sub.next() is None


def test_the_packet_after_a_drop_is_marked_as_after_a_gap() -> None:
    sub = PacketSubscription(max_packets=2)
    for i in range(4):  # 0, 1 queued; 2, 3 dropped
        sub.offer(_packet(i))
    assert sub.get(0) is not None
    assert not sub.last_gap
    sub.offer(_packet(4))  # queued after the drops
    assert sub.get(0) is not None
    assert not sub.last_gap  # packet 1 came before the drops
    got = sub.get(0)
    assert got is not None
    assert got.dts == 4
    assert sub.last_gap
