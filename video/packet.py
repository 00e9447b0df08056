"""The camera's data as plain values: an encoded packet and what is known of its stream.

Packets leave PyAV on the reader thread as immutable :class:`VideoPacket` values: plain
timestamps and flags, and a read-only view of the encoded bytes. Consumers on other threads
never call into a PyAV object the demuxer uses, and the pure modules (the ring, the health
tracker, the timeline watch) can be tested without PyAV.

Most cameras send an audio track beside the video; its packets travel as the same type with
``audio`` set. Only consumers that ask for audio (clips) ever see them: the ring, health,
motion and the live view are fed video alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """One encoded packet (a video access unit, or an audio frame when ``audio``).

    ``epoch`` numbers the timeline the packet belongs to: a new connection starts one, and
    so does a discontinuity within one (the camera's timestamps jumped, or its codec
    parameters changed: see :class:`TimelineCause`). Timestamps of two epochs are not
    comparable.

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
    audio: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def dts_s(self) -> float:
        # Integer true division is correctly rounded: the same float as float(dts * time_base),
        # without building a Fraction (called several times per packet by the ring and health).
        return self.dts * self.time_base.numerator / self.time_base.denominator

    @property
    def pts_s(self) -> float:
        return self.pts * self.time_base.numerator / self.time_base.denominator


class TimelineCause(enum.Enum):
    """Why a timeline (epoch) began."""

    CONNECTED = "reconnect"  # a new connection to the camera
    JUMPED_BACK = "timestamps_jumped_back"  # the camera's clock went back (reset, new encoder)
    JUMPED_FORWARD = "timestamps_jumped_forward"  # ... or leapt ahead of the time that passed
    NEW_PARAMETERS = "new_parameters"  # a new resolution or codec configuration mid-stream


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """The audio track of one connection.

    ``template`` is a PyAV stream to copy (``add_stream_from_template``) when MP4 can carry
    the codec as it is (AAC); None when clips must transcode it to AAC (G.711 A-law and
    mu-law, which MP4 players do not take).
    """

    codec: str
    sample_rate: int
    channels: int
    time_base: Fraction
    template: Any = field(compare=False, repr=False)

    @property
    def remuxed(self) -> bool:
        return self.template is not None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """The video stream of one timeline (epoch), and its audio track if it is recorded.

    ``template`` is a PyAV stream holding the codec parameters, owned by a private output
    container that is never written nor closed by anyone: a clip may copy it with
    ``add_stream_from_template`` from any thread, long after the input container it came from
    has been closed by the reader thread.

    ``cause`` says why this timeline began; ``jump_s`` is by how much the camera's clock
    jumped for a discontinuity (negative: back), 0 otherwise.
    """

    epoch: int
    codec: str
    width: int
    height: int
    time_base: Fraction
    nominal_fps: float | None
    extradata: bytes
    template: Any = field(compare=False, repr=False)
    audio: AudioInfo | None = None
    cause: TimelineCause = TimelineCause.CONNECTED
    jump_s: float = 0.0

    def same_parameters(self, other: StreamInfo) -> bool:
        """True when a file written with one's header plays the other's packets."""
        return (self.codec, self.width, self.height, self.extradata) == (
            other.codec,
            other.width,
            other.height,
            other.extradata,
        )
