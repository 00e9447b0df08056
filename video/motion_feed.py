"""The motion detector's feed: a thread that decodes the camera's packets for motion only.

H.264 pictures depend on the ones before, so every packet is decoded, but only a few
pictures a second (``analysis_fps``) are looked at, through a zero-copy view of their Y
plane; nothing is converted to RGB or gray. Point it at the camera's substream (a small
resolution) to make decoding cheap: see docs/camera.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import av

from video.motion import MotionConfig, MotionDetector, MotionEvent, y_plane
from video.priority import lower_thread_priority
from video.snapshot import make_decoder, to_av_packet
from video.source import StreamReader

log = logging.getLogger("threshold.video")

DEFAULT_ANALYSIS_FPS = 4.0


class MotionFeed:
    """Runs a :class:`MotionDetector` over a source on its own thread."""

    def __init__(
        self,
        source: StreamReader,
        on_event: Callable[[MotionEvent], None],
        config: MotionConfig | None = None,
        analysis_fps: float = DEFAULT_ANALYSIS_FPS,
    ) -> None:
        if analysis_fps <= 0:
            raise ValueError("analysis_fps must be > 0")
        self.detector = MotionDetector(config)
        self.analysis_fps = analysis_fps
        self.analysed = 0
        self.decoded = 0
        self._source = source
        self._on_event = on_event
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-motion", daemon=True)
        _, self._sub = source.subscribe(max_packets=120)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._sub.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        lower_thread_priority()  # decoding every picture: never ahead of the access path
        decoder = None
        epoch = None
        next_at = 0.0
        period = 1.0 / self.analysis_fps
        while not self._stop.is_set():
            packet = self._sub.get(0.5)
            if packet is None:
                if self._sub.closed:
                    return
                continue
            if packet.epoch != epoch:
                info = self._source.info_for(packet.epoch)
                if info is None or not packet.keyframe:
                    continue
                decoder = make_decoder(info)
                epoch = packet.epoch
                self.detector.reset()
            assert decoder is not None
            try:
                frames = decoder.decode(to_av_packet(packet))
            except av.FFmpegError:
                epoch = None  # resynchronise on the next keyframe
                continue
            for frame in frames:
                self.decoded += 1
                if packet.arrived_at < next_at:
                    continue
                next_at = packet.arrived_at + period
                gray = y_plane(frame.planes[0], frame.width, frame.height)
                event = self.detector.feed(gray, packet.arrived_at)
                self.analysed += 1
                if event is not None:
                    try:
                        self._on_event(event)
                    except Exception:
                        log.exception("motion listener failed")
