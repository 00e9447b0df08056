"""The pre-roll ring: the last few seconds of encoded video, always starting at a keyframe.

Pure: no threads, no I/O. The reader thread pushes every packet; a clip starts by copying
the ring, so it begins a few seconds before the door unlocked, at a keyframe a player can
decode from.

Bounds:

* **duration** (``preroll_s``): the ring drops its oldest group of pictures (keyframe to the
  packet before the next keyframe) only while what remains still spans ``preroll_s``. It
  therefore holds at least ``preroll_s`` once the stream has run that long, and at most
  ``preroll_s`` plus one keyframe interval.
* **bytes** (``max_bytes``): a hard limit, whatever the bitrate. Oldest groups go first; if
  the newest group alone is larger than the limit, the ring empties and waits for the next
  keyframe rather than keep a tail that cannot be decoded.

A new connection epoch, or a timestamp going backwards, starts the ring afresh: packets of
two timelines cannot be cut into one clip.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from video.packet import VideoPacket

DEFAULT_PREROLL_S = 5.0
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RingStats:
    packets: int
    bytes: int
    span_s: float
    overflows: int


class PrerollRing:
    """Keyframe-aligned packets bounded by duration and by a hard byte limit."""

    def __init__(
        self, preroll_s: float = DEFAULT_PREROLL_S, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if preroll_s < 0:
            raise ValueError("preroll_s must be >= 0")
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        self.preroll_s = preroll_s
        self.max_bytes = max_bytes
        self._packets: deque[VideoPacket] = deque()
        # Positions of keyframes, counted from the start of the stream, so popping from the
        # left does not renumber them.
        self._keyframes: deque[int] = deque()
        # When the stream reaches this time (s), the oldest group can go: the second keyframe's
        # time plus preroll_s. Kept up to date so that a push is a comparison, not a scan:
        # the reader pushes every packet.
        self._trim_at = math.inf
        self._first_index = 0
        self._bytes = 0
        self._overflows = 0

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def span_s(self) -> float:
        if not self._packets:
            return 0.0
        return self._packets[-1].dts_s - self._packets[0].dts_s

    def stats(self) -> RingStats:
        return RingStats(len(self._packets), self._bytes, self.span_s, self._overflows)

    def clear(self) -> None:
        self._first_index += len(self._packets)
        self._packets.clear()
        self._keyframes.clear()
        self._trim_at = math.inf
        self._bytes = 0

    def push(self, packet: VideoPacket, dts_s: float | None = None) -> None:
        """Add the newest packet; ``dts_s`` is ``packet.dts_s`` if the caller has it already."""
        packets = self._packets
        if packets:
            last = packets[-1]
            if packet.epoch != last.epoch or packet.dts < last.dts:
                self.clear()
        if packet.keyframe:
            self._keyframes.append(self._first_index + len(packets))
            if len(self._keyframes) == 2:
                self._trim_at = self._trim_point(packet.dts_s)
        elif not packets:
            return  # a ring never starts mid-group: nothing before a keyframe decodes
        packets.append(packet)
        self._bytes += len(packet.data)
        if (
            self._bytes > self.max_bytes
            or (packet.dts_s if dts_s is None else dts_s) >= self._trim_at
        ):
            self._trim()

    def packets(self) -> tuple[VideoPacket, ...]:
        """Everything held, oldest first; the first packet is a keyframe."""
        return tuple(self._packets)

    def latest_group(self) -> tuple[VideoPacket, ...]:
        """The newest keyframe and the packets after it: enough to decode the latest picture."""
        if not self._keyframes:
            return ()
        start = self._keyframes[-1] - self._first_index
        return tuple(self._packets)[start:]

    def _drop_oldest_group(self) -> None:
        # Precondition: at least two keyframes, so the ring still starts at one afterwards.
        self._keyframes.popleft()
        next_key = self._keyframes[0]
        while self._first_index < next_key:
            dropped = self._packets.popleft()
            self._bytes -= dropped.size
            self._first_index += 1
        self._trim_at = (
            self._trim_point(self._packets[self._keyframes[1] - self._first_index].dts_s)
            if len(self._keyframes) >= 2
            else math.inf
        )

    def _trim_point(self, second_keyframe_s: float) -> float:
        # A microsecond early: the exact test is _span_from's, in _trim.
        return second_keyframe_s + self.preroll_s - 1e-6

    def _span_from(self, keyframe_index: int) -> float:
        first = self._packets[keyframe_index - self._first_index]
        return self._packets[-1].dts_s - first.dts_s

    def _trim(self) -> None:
        while len(self._keyframes) >= 2 and self._span_from(self._keyframes[1]) >= self.preroll_s:
            self._drop_oldest_group()
        while self._bytes > self.max_bytes:
            if len(self._keyframes) >= 2:
                self._drop_oldest_group()
            else:
                self._overflows += 1
                self.clear()
