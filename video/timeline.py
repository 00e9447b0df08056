"""The camera's timeline: noticing when its timestamps jump. Pure; times are passed in.

A camera's clock can be reset, or its encoder restarted, in the middle of a stream: its
timestamps then go back (or leap ahead) while packets keep arriving at the same pace. Left
alone, a jump back makes every packet look seconds old (the camera stops being live and a
false ``camera_stalled`` fires), and a jump forward puts a long frozen picture in the clip.

:class:`TimelineWatch` compares each video packet's timestamp step with the time that passed
between arrivals. A step back of more than ``back_tolerance_s``, or a step ahead of the
arrivals by more than ``forward_tolerance_s``, is a :class:`Jump`. The reader then starts a
new timeline (epoch): health re-anchors, the ring starts afresh, and a clip restarts its
timeline at the next keyframe, placed by the time that passed, with the gap recorded.

Why per packet and not against a long-run anchor: over TCP packets arrive in order, so the
arrival step is never negative; a burst after a network hiccup has small arrival steps but
also normal timestamp steps. Only a jump makes one timestamp step disagree with its arrival
step by seconds. A camera that pauses (a freeze, a low frame rate at night) has both steps
large together, which is not a jump.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A step back larger than this is a jump (smaller ones are left to the ring and the clip,
#: which already drop packets that do not move forward).
BACK_TOLERANCE_S = 0.25
#: A timestamp step ahead of the arrival step by more than this is a jump: a second of
#: frozen picture is the most a clip may show for it.
FORWARD_TOLERANCE_S = 1.0


@dataclass(frozen=True, slots=True)
class Jump:
    """The camera's clock jumped by ``by_s`` seconds (negative: back) at arrival ``at``."""

    by_s: float
    at: float

    @property
    def backward(self) -> bool:
        return self.by_s < 0


class TimelineWatch:
    """Feeds on (timestamp, arrival) pairs of one connection's video; reports jumps."""

    __slots__ = ("_last_at", "_last_dts_s", "back_tolerance_s", "forward_tolerance_s")

    def __init__(
        self,
        back_tolerance_s: float = BACK_TOLERANCE_S,
        forward_tolerance_s: float = FORWARD_TOLERANCE_S,
    ) -> None:
        self.back_tolerance_s = back_tolerance_s
        self.forward_tolerance_s = forward_tolerance_s
        self._last_dts_s: float | None = None
        self._last_at = 0.0

    def reset(self) -> None:
        """A new connection: its timeline has nothing to do with the last one's."""
        self._last_dts_s = None

    def check(self, dts_s: float, arrived_at: float) -> Jump | None:
        """The jump this packet makes, if any. The packet becomes the reference either way."""
        last = self._last_dts_s
        last_at = self._last_at
        self._last_dts_s = dts_s
        self._last_at = arrived_at
        if last is None:
            return None
        step = dts_s - last
        elapsed = max(0.0, arrived_at - last_at)
        if step < -self.back_tolerance_s or step - elapsed > self.forward_tolerance_s:
            return Jump(step - elapsed, arrived_at)
        return None
