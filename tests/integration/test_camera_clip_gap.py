"""A clip whose writer fell behind resumes at the next keyframe, so it still decodes cleanly.

Real PyAV muxing and decoding; the packets come from a generated video file, and the
queue between reader and writer is a PacketSubscription that really overflows.
"""

from __future__ import annotations

import asyncio
import io
import time
from fractions import Fraction
from pathlib import Path

import av

from video.clip import ClipRecording
from video.packet import StreamInfo, VideoPacket
from video.subscription import PacketSubscription
from video.testvideo import generate_test_video


def packets_and_info(path: Path) -> tuple[list[VideoPacket], StreamInfo]:
    holder = av.open(io.BytesIO(), "w", format="mp4")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = StreamInfo(
            1,
            "h264",
            stream.width,
            stream.height,
            Fraction(stream.time_base),
            15.0,
            bytes(stream.codec_context.extradata or b""),
            holder.add_stream_from_template(stream),
        )
        now = time.monotonic()
        packets = [
            VideoPacket(bytes(p), p.pts, p.dts, Fraction(p.time_base), p.is_keyframe, now, 1)
            for p in container.demux(stream)
            if p.size
        ]
    return packets, info


async def test_a_gap_resumes_at_the_next_keyframe(tmp_path: Path) -> None:
    video = generate_test_video(tmp_path / "v.mp4", seconds=3.0, fps=15, keyframe_interval=15)
    packets, info = packets_and_info(video)
    assert [i for i, p in enumerate(packets) if p.keyframe] == [0, 15, 30]
    # A real overflow: the writer is behind, 0-4 are queued and 5-9 dropped.
    queue = PacketSubscription(max_packets=5)
    for p in packets[:10]:
        queue.offer(p)
    assert queue.dropped == 5
    # Then room for the rest, so that the run is deterministic: the writer's queue is 0-4,
    # the gap, then 10-44 as they arrive.
    queue.max_packets = 100
    for p in packets[10:]:
        queue.offer(p)
    recording = ClipRecording(
        "gap", tmp_path / "gap.mp4", (), queue, lambda _e: info, asyncio.get_running_loop(), 0.0
    )
    done = recording.finish(0.0)  # stop once the queue is drained
    recording.start()
    async with asyncio.timeout(10):
        result = await done
    with av.open(str(result.path)) as clip:
        frames = list(clip.decode(video=0))
    # 0-4, then nothing until the keyframe at 15, then 15-43 (the writer holds the newest
    # packet back until the next arrives, and the last one is never written).
    assert result.frame_count == 5 + 29 == len(frames)
