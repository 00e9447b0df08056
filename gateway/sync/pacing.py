"""The paced upload's schedule: constant-rate slots, padding, and the queue (docs/privacy.md).

What the relay sees must not depend on what happens at home. So the upload runs in *slots*:
one every ``interval_s`` seconds (plus a small random jitter), and every slot seals off
exactly ``slots`` more entries of the log, no more, no fewer. Real entries wait in the log
(the queue is the part of the log above the last boundary) and leave at the next slots; when
fewer than ``slots`` are waiting, the slot appends *padding* entries (kind ``sync.padding``,
sealed to the owner like every entry) so that the tree the relay sees grows by exactly
``slots`` per interval, on a quiet day and a busy one. A burst spreads over the following
slots. The audit log itself never waits: the door appends as it always did; only the upload
is paced.

A slot the gateway could not deliver (the relay unreachable) is still closed locally on
time, padding and all, so the tree size is a function of the slots elapsed alone; the next
exchange that gets through carries every slot missed, which the relay could count anyway
from the silence. An exchange never closes more than one slot: one that comes late is
followed at once by the next until the exchanges are back on the grid.

Pure: no I/O, no clock reads, no randomness of its own. Times (seconds on any monotonic
scale) and jitter draws (in [0, 1)) come in as arguments; the sync task drives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.errors import GatewayError
from gateway.trust.seal import PADDING_KIND

__all__ = ["PADDING_KIND", "PacingConfig", "SlotPlan", "UploadPacer"]
DEFAULT_SLOTS = 4
DEFAULT_INTERVAL_S = 60.0
#: Jitter as a fraction of the interval: each exchange happens at its slot's due time plus a
#: uniform draw of up to this much, so the relay cannot time the gateway's clock exactly
#: either (the draw is independent of anything at home).
DEFAULT_JITTER_FRACTION = 0.05
#: The queue's bound, in slots' worth of entries: past it the owner is warned (the upload
#: stays paced; nothing is lost, entries only wait longer in the local log).
DEFAULT_QUEUE_BOUND_SLOTS = 60
#: Late exchanges are caught up back to back for at most this many intervals.
MAX_CATCH_UP_SLOTS = 10


class PacingError(GatewayError):
    """A pacing setting is out of range."""

    code = "pacing_invalid"


@dataclass(frozen=True)
class PacingConfig:
    """``[cloud] interval_s``, ``slots``, ``jitter_s`` and ``queue_bound``."""

    interval_s: float = DEFAULT_INTERVAL_S
    slots: int = DEFAULT_SLOTS
    jitter_s: float = DEFAULT_INTERVAL_S * DEFAULT_JITTER_FRACTION
    queue_bound: int = DEFAULT_SLOTS * DEFAULT_QUEUE_BOUND_SLOTS

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise PacingError("the slot interval must be positive")
        if not 1 <= self.slots <= 500:
            raise PacingError("a slot carries 1 to 500 entries")
        if not 0 <= self.jitter_s < self.interval_s:
            raise PacingError("the jitter is at least 0 and shorter than the interval")
        if self.queue_bound < self.slots:
            raise PacingError("the queue bound is at least one slot's worth of entries")


@dataclass(frozen=True)
class SlotPlan:
    """What closing the due slots does to the log: append ``padding`` entries (when fewer
    real entries than the slots carry were waiting), then seal off the first ``boundary``
    entries, leaving ``queued`` real entries for later slots."""

    slots: int
    boundary: int
    padding: int
    queued: int


@dataclass(frozen=True)
class QueueState:
    """The queue as ``threshold status`` shows it."""

    queued: int
    #: Seconds until the last entry queued now has left (its slot's due time, at most).
    delay_s: float
    over_bound: bool


class UploadPacer:
    """Slot times and slot contents. ``boundary`` is the tree size the last closed slot
    sealed off (None: no slot yet; the first one seals off everything written before it
    plus one slot's worth, so pacing starts cleanly on an existing log)."""

    def __init__(self, config: PacingConfig, boundary: int | None, slots_closed: int = 0) -> None:
        self.config = config
        self.boundary = boundary
        self.slots_closed = slots_closed
        self._due_s: float | None = None
        self._at_s: float | None = None

    # Time ------------------------------------------------------------------------------------

    def start(self, now_s: float) -> None:
        """The first slot is due at once (the gateway starting is no secret: it was silent)."""
        self._due_s = now_s
        self._at_s = now_s

    def next_at(self) -> float:
        """When the next exchange should happen (its due time plus its jitter)."""
        if self._at_s is None:
            raise PacingError("the pacer was not started")
        return self._at_s

    def take_due(self, now_s: float, draw: float) -> int:
        """Take the slot that is due at ``now_s`` (the caller waited for :meth:`next_at`, or
        the owner asked for a slot now) and schedule the next one with jitter ``draw`` in
        [0, 1). Every exchange closes exactly one slot, and the grid never moves: an
        exchange that came late (a slow request, a busy machine) is followed at once by the
        next until the exchanges are back on the grid, so a late one leaves no lasting mark
        (a shifted phase would). Only after a gap of more than ``MAX_CATCH_UP_SLOTS``
        intervals (the machine suspended, say) does the grid restart from now."""
        if self._due_s is None:
            raise PacingError("the pacer was not started")
        interval = self.config.interval_s
        self._due_s += interval
        if self._due_s < now_s - MAX_CATCH_UP_SLOTS * interval:
            self._due_s = now_s + interval
        jitter = min(max(draw, 0.0), 0.999999) * self.config.jitter_s
        self._at_s = max(now_s, self._due_s + jitter)
        return 1

    # Contents --------------------------------------------------------------------------------

    def plan(self, tree_size: int, due: int) -> SlotPlan:
        """What closing ``due`` slots on a log of ``tree_size`` entries does."""
        if due < 1:
            raise PacingError("at least one slot closes")
        start = tree_size if self.boundary is None else self.boundary
        boundary = start + due * self.config.slots
        return SlotPlan(
            slots=due,
            boundary=boundary,
            padding=max(0, boundary - tree_size),
            queued=max(0, tree_size - boundary),
        )

    def closed(self, plan: SlotPlan) -> None:
        self.boundary = plan.boundary
        self.slots_closed += plan.slots

    def queue(self, tree_size: int) -> QueueState:
        """The entries waiting above the boundary, and how long the last of them will wait
        (whole slots: a queue of q leaves in ceil(q / slots) slots)."""
        queued = 0 if self.boundary is None else max(0, tree_size - self.boundary)
        slots_needed = math.ceil(queued / self.config.slots)
        return QueueState(
            queued=queued,
            delay_s=slots_needed * self.config.interval_s,
            over_bound=queued > self.config.queue_bound,
        )


def bytes_per_day(config: PacingConfig, leaf_bytes: int, exchange_overhead: int) -> int:
    """What the paced upload costs a day: every slot's leaves plus a fixed overhead per
    exchange (request headers, the checkpoint and proof, the mailbox poll and the time)."""
    exchanges = 86400.0 / config.interval_s
    return int(exchanges * (config.slots * leaf_bytes + exchange_overhead))
