"""How packets travel from the reader to consumers: zero-copy, in small batches, none lost.

The reader hands packets over in batches (its per-packet Python is far cheaper warm), so a
packet can reach a consumer up to DELIVERY_LAG_S after it arrived. These tests pin down
what that must not cost: a partial batch is delivered when the stream ends, the data is the
demuxed bytes themselves (read-only), and a clip still gets every packet that arrived
before the end of its post-roll. Real PyAV on generated video files, real threads.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import av

from tests.integration.test_camera_clip_gap import packets_and_info
from video.clip import ClipRecording
from video.packet import VideoPacket
from video.source import FileSource, SourceConfig, reader_batch_size
from video.subscription import DELIVERY_LAG_S, PacketSubscription
from video.testvideo import generate_test_video

SHORT_STREAM = 31  # packets: ten batches of three at 15 fps, and one left over


class ShortStream(FileSource):
    """A file that ends after SHORT_STREAM packets, read as fast as it demuxes."""

    def _packets(self, container: Any, stream: Any) -> Iterator[Any]:
        return itertools.islice(container.demux(stream), SHORT_STREAM)


def test_batches_hold_at_most_a_quarter_second_of_video() -> None:
    assert reader_batch_size(15.0) == 3
    assert reader_batch_size(30.0) == 4
    assert reader_batch_size(5.0) == 1
    assert reader_batch_size(None) == 1
    for fps in (1.0, 8.0, 12.5, 15.0, 25.0, 30.0, 60.0):
        assert (reader_batch_size(fps) - 1) / fps < DELIVERY_LAG_S


def test_the_last_partial_batch_is_delivered_when_the_stream_ends(tmp_path: Path) -> None:
    video = generate_test_video(tmp_path / "v.mp4", seconds=3.0, fps=15, keyframe_interval=15)
    with av.open(str(video)) as container:
        expected = [bytes(p) for p in itertools.islice(container.demux(video=0), SHORT_STREAM)]
    config = SourceConfig(url=str(video), backoff_s=(60.0,))
    reader = ShortStream(video, config)
    events: list[str] = []
    ended = threading.Event()

    def on_change() -> None:
        events.append("change")
        if len(events) == 2:  # connected, then disconnected at the end of the stream
            ended.set()

    reader.add_listener(on_change)
    _, sub = reader.subscribe()
    reader.start()
    try:
        assert ended.wait(10), "the short stream never ended"
        got: list[VideoPacket] = []
        while (packet := sub.get(0)) is not None:
            got.append(packet)
    finally:
        assert reader.stop(5)
    assert reader.info is not None
    assert reader_batch_size(reader.info.nominal_fps) == 3  # so the last packet was left over
    assert [bytes(p.data) for p in got] == expected
    # The demuxer's own buffer, shared read-only rather than copied.
    assert all(isinstance(p.data, memoryview) and p.data.readonly for p in got)


async def test_a_clip_waits_for_packets_still_on_their_way_after_its_post_roll(
    tmp_path: Path,
) -> None:
    video = generate_test_video(tmp_path / "v.mp4", seconds=2.0, fps=15, keyframe_interval=15)
    packets, info = packets_and_info(video)
    queue = PacketSubscription(max_packets=100)
    recording = ClipRecording(
        "late", tmp_path / "late.mp4", (), queue, lambda _e: info, asyncio.get_running_loop(), 0.0
    )
    recording.start()
    past = time.monotonic() - 5.0
    for p in packets[:10]:
        queue.offer(replace(p, arrived_at=past))
    done = recording.finish(0.0)  # the post-roll ends now
    # Ten more that arrived before the end, handed over late as a reader batch can be; then
    # the first packet from after the end.
    await asyncio.sleep(DELIVERY_LAG_S / 2)
    for p in packets[10:20]:
        queue.offer(replace(p, arrived_at=past))
    queue.offer(replace(packets[20], arrived_at=time.monotonic()))
    async with asyncio.timeout(10):
        result = await done
    with av.open(str(result.path)) as clip:
        frames = list(clip.decode(video=0))
    # 0-18: each packet is written once the next one arrives; 19 is held back at the end.
    assert result.frame_count == 19 == len(frames)
