"""The camera on a generated local video file: the same interface without an RTSP server."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from pathlib import Path

import av
import pytest

from tests.support.rtsp import until
from video.camera import Camera, CameraConfig
from video.errors import CameraConfigError
from video.motion import MotionConfig, MotionEvent, MotionEventKind
from video.retention import ClipDeleted, enforce_retention
from video.source import open_source
from video.testvideo import generate_test_video


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_test_video(
        tmp_path_factory.mktemp("video") / "door.mp4", seconds=2.0, keyframe_interval=15
    )


def test_generated_video_has_the_asked_keyframe_interval(video_file: Path) -> None:
    with av.open(str(video_file)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert len(packets) == 30
    assert keys == [0, 15]


async def test_file_source_loops_in_real_time_with_one_timeline(
    video_file: Path, tmp_path: Path
) -> None:
    deleted: list[ClipDeleted] = []
    motion: list[MotionEvent] = []
    config = CameraConfig(
        url=str(video_file),
        clip_dir=tmp_path / "clips",
        preroll_s=1.0,
        post_roll_s=0.5,
        clip_budget_bytes=10_000_000,
        motion=MotionConfig(),
        motion_fps=5.0,
    )
    async with Camera(config) as camera:
        camera.add_deletion_listener(deleted.append)
        started = asyncio.Event()
        camera.add_motion_listener(
            lambda e: started.set() if e.kind is MotionEventKind.STARTED else None
        )
        camera.add_motion_listener(motion.append)
        assert await camera.wait_live(5.0)
        await until(camera.source, lambda: camera.source.ring_stats().span_s >= 1.0, 5)
        first = await camera.start_clip("file-1")
        # 2.5 s: across the loop point of the 2 s file.
        await until(
            camera.source,
            lambda: (camera.health().last_packet_at or 0) - first.started_monotonic > 2.5,
            10,
        )
        one = await camera.finish_clip(first)
        two = await camera.finish_clip(await camera.start_clip("file-2"))
        async with asyncio.timeout(5):
            await started.wait()
        jpeg = await camera.snapshot()
        facts = camera.motion_facts()

    assert jpeg[:2] == b"\xff\xd8"
    assert one.duration_s >= 1.0 + 2.5 + 0.5 - 0.2
    assert one.reconnects == 0  # the loop kept one timeline
    with av.open(str(one.path)) as clip:
        frames = list(clip.decode(video=0))
    assert len(frames) == one.frame_count
    # Continuous across the file's loop point: no gap larger than a frame.
    times = [f.time for f in frames if f.time is not None]
    assert max(b - a for a, b in itertools.pairwise(times)) < 0.1
    assert deleted == []
    assert two.sha256 == hashlib.sha256(two.path.read_bytes()).hexdigest()
    assert motion[0].kind is MotionEventKind.STARTED
    # The test video's block never stops sliding.
    assert facts.enabled
    assert facts.moving
    assert facts.seconds_since_motion is not None
    assert facts.seconds_since_motion < 1.0


def test_open_source_refuses_unknown_schemes_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CameraConfigError, match="scheme"):
        open_source("http://example.invalid/stream")
    with pytest.raises(CameraConfigError, match="no such"):
        open_source(str(tmp_path / "missing.mp4"))


def test_retention_deletes_real_files_oldest_first_and_reports_each(tmp_path: Path) -> None:

    for i in range(4):
        path = tmp_path / f"{i}.mp4"
        path.write_bytes(b"v" * 1000)
        os.utime(path, (1_000 + i, 1_000 + i))
    (tmp_path / "notes.txt").write_bytes(b"x" * 5000)  # not a clip: never touched
    reported: list[ClipDeleted] = []
    deleted = enforce_retention(tmp_path, 2_500, reported.append, keep=[tmp_path / "0.mp4"])
    assert [d.path.name for d in reported] == ["1.mp4", "2.mp4"]
    assert deleted == reported
    assert all(d.size_bytes == 1000 for d in reported)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.mp4", "3.mp4", "notes.txt"]


def test_snapshots_count_toward_the_budget_and_go_oldest_first_with_clips(
    tmp_path: Path,
) -> None:
    files = ["a-grant.jpg", "a.mp4", "b-close.jpg", "b.mp4"]
    for i, name in enumerate(files):
        path = tmp_path / name
        path.write_bytes(b"v" * 1000)
        os.utime(path, (1_000 + i, 1_000 + i))
    reported: list[ClipDeleted] = []
    enforce_retention(tmp_path, 2_000, reported.append)
    assert [(d.path.name, d.media) for d in reported] == [
        ("a-grant.jpg", "snapshot"),
        ("a.mp4", "clip"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b-close.jpg", "b.mp4"]
