"""The camera's data as plain values: an encoded video packet and what is known of its stream.

Packets leave PyAV on the reader thread as immutable :class:`VideoPacket` values: plain
timestamps and flags, and a read-only view of the encoded bytes. Consumers on other threads
never call into a PyAV object the demuxer uses, and the pure modules (the ring, the health
tracker) can be tested without PyAV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """One encoded video packet (an access unit), as demuxed from the camera.

    ``epoch`` numbers the connection the packet came from: timestamps of two epochs are not
    comparable, because each RTSP session starts its own timeline.

    ``data`` is bytes, or (from a reader) a read-only view of the demuxed packet's own
    buffer, shared without copying: either way it is never written to.
    """

    data: bytes | memoryview
    pts: int
    dts: int
    time_base: Fraction
    keyframe: bool
    arrived_at: float
    epoch: int

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def dts_s(self) -> float:
        # Integer true division is correctly rounded: the same float as float(dts * time_base),
        # without building a Fraction (called several times per packet by the ring and health).
        return self.dts * self.time_base.numerator / self.time_base.denominator


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """The video stream of one connection (epoch).

    ``template`` is a PyAV stream holding the codec parameters, owned by a private output
    container that is never written nor closed by anyone: a clip may copy it with
    ``add_stream_from_template`` from any thread, long after the input container it came from
    has been closed by the reader thread.
    """

    epoch: int
    codec: str
    width: int
    height: int
    time_base: Fraction
    nominal_fps: float | None
    extradata: bytes
    template: Any = field(compare=False, repr=False)
