"""The camera's health: is it live, and what the stream looks like. Pure; the clock is passed in.

``live`` means: connected, and a packet arrived within twice the observed keyframe
interval. Twice, because a camera sending a frame every 66 ms that goes quiet for two whole
groups of pictures has certainly stalled, while one late group can be network jitter. The
window is capped (``max_silence_s``) so that a camera with a 10 s keyframe interval cannot
hide a 20 s freeze, and assumed (``assumed_keyframe_interval_s``) until two keyframes have
been seen.

"Arrived" is judged on the stream's own clock, not only on arrival. When a stream stalls,
FFmpeg's RTSP demuxer still hands over the last frame it was holding once its read times
out: a packet that *arrives* late but is *old*. Each packet is therefore dated at the time
its timestamp says it should have arrived (the smallest transit offset seen, allowed to
creep up by ``DRIFT_ALLOWANCE`` for cameras whose clock runs slow), never later than its
arrival. A stale packet flushed after a freeze does not make the camera look live.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

DEFAULT_MAX_SILENCE_S = 4.0
DEFAULT_ASSUMED_KEYFRAME_INTERVAL_S = 2.0
_FPS_WINDOW = 31
DRIFT_ALLOWANCE = 0.05  # seconds per second the camera's clock may run slow


class StreamState(enum.Enum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """A snapshot of the camera's health, safe to hand to any thread or to the audit log."""

    live: bool
    state: StreamState
    last_packet_at: float | None  # time.monotonic() of the newest packet's arrival
    last_packet_age_s: float | None
    stream_age_s: float | None  # how old the newest picture is, on the stream's clock
    fps: float | None
    keyframe_interval_s: float | None
    reconnects: int
    dropped_packets: int
    live_window_s: float


class HealthTracker:
    """Turns packet arrivals and connection events into :class:`CameraHealth`."""

    def __init__(
        self,
        *,
        max_silence_s: float = DEFAULT_MAX_SILENCE_S,
        assumed_keyframe_interval_s: float = DEFAULT_ASSUMED_KEYFRAME_INTERVAL_S,
    ) -> None:
        self.max_silence_s = max_silence_s
        self.assumed_keyframe_interval_s = assumed_keyframe_interval_s
        self._state = StreamState.CONNECTING
        self._connections = 0
        self._last_packet_at: float | None = None
        self._fresh_at: float | None = None
        self._transit: float | None = None
        self._last_key_dts_s: float | None = None
        self._keyframe_interval_s: float | None = None
        self._recent_dts: deque[float] = deque(maxlen=_FPS_WINDOW)
        self._dropped = 0

    def on_connected(self) -> None:
        self._connections += 1
        self._state = StreamState.STREAMING
        # A new connection starts a new timeline.
        self._last_key_dts_s = None
        self._recent_dts.clear()
        self._transit = None

    def on_discontinuity(self) -> None:
        """The camera's timestamps jumped (:mod:`video.timeline`): re-anchor on the next packet.

        The transit estimate and the keyframe timing are measured afresh; whether the camera
        is live is still judged from when the last fresh packet was due, so a jump neither
        hides a stall nor makes a live camera look stalled.
        """
        self._last_key_dts_s = None
        self._recent_dts.clear()
        self._transit = None

    def on_disconnected(self) -> None:
        if self._state is not StreamState.STOPPED:
            self._state = StreamState.DISCONNECTED

    def on_stopped(self) -> None:
        self._state = StreamState.STOPPED

    def on_dropped(self, count: int = 1) -> None:
        self._dropped += count

    def on_packet(self, now: float, dts_s: float, keyframe: bool) -> None:
        transit = now - dts_s
        if self._transit is None or self._last_packet_at is None or transit <= self._transit:
            self._transit = transit
        else:
            creep = DRIFT_ALLOWANCE * max(0.0, now - self._last_packet_at)
            self._transit = min(transit, self._transit + creep)
        due = self._transit + dts_s
        self._fresh_at = due if self._fresh_at is None else max(self._fresh_at, due)
        self._last_packet_at = now
        self._recent_dts.append(dts_s)
        if keyframe:
            if self._last_key_dts_s is not None and dts_s > self._last_key_dts_s:
                self._keyframe_interval_s = dts_s - self._last_key_dts_s
            self._last_key_dts_s = dts_s

    def live_window_s(self) -> float:
        interval = self._keyframe_interval_s or self.assumed_keyframe_interval_s
        return min(2.0 * interval, self.max_silence_s)

    def fps(self) -> float | None:
        if len(self._recent_dts) < 2:
            return None
        span = self._recent_dts[-1] - self._recent_dts[0]
        if span <= 0:
            return None
        return (len(self._recent_dts) - 1) / span

    def snapshot(self, now: float) -> CameraHealth:
        age = None if self._last_packet_at is None else max(0.0, now - self._last_packet_at)
        stream_age = None if self._fresh_at is None else max(0.0, now - self._fresh_at)
        window = self.live_window_s()
        live = (
            self._state is StreamState.STREAMING and stream_age is not None and stream_age <= window
        )
        return CameraHealth(
            live=live,
            state=self._state,
            last_packet_at=self._last_packet_at,
            last_packet_age_s=age,
            stream_age_s=stream_age,
            fps=self.fps(),
            keyframe_interval_s=self._keyframe_interval_s,
            reconnects=max(0, self._connections - 1),
            dropped_packets=self._dropped,
            live_window_s=window,
        )
