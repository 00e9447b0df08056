"""How long to wait before trying again: the one retry schedule of Threshold. Pure.

Every retry loop picks one of two shapes from here instead of writing its own:

* :func:`doubling_delay`: ``initial_s`` after the first failure, doubled after each further
  one, never above ``cap_s``. With ``jitter`` (a draw in [0, 1)) the delay is a uniform point
  below that ceiling instead ("full jitter", AWS Architecture Blog, "Exponential Backoff And
  Jitter", 2015), so that many clients that failed together do not come back together. Cloud
  sync uses jitter; the supervisor's job restarts and the relock retry do not (one process,
  one job: a schedule that reads the same in every log is worth more there).
* :func:`stepped_delay`: an explicit list of steps, the last one repeating (the camera's
  reconnect schedule, docs/camera.md "Ingest").

Failures count from 1: the delay after the first failure is the first step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# 2**62 seconds is beyond any cap; stopping the exponent there keeps the float finite.
_MAX_DOUBLINGS = 62


def doubling_delay(
    failures: int,
    initial_s: float,
    cap_s: float,
    *,
    jitter: Callable[[], float] | None = None,
) -> float:
    """Seconds to wait after ``failures`` consecutive failures (>= 1)."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    if initial_s < 0 or cap_s < 0:
        raise ValueError("delays are >= 0")
    ceiling = min(cap_s, initial_s * 2.0 ** min(failures - 1, _MAX_DOUBLINGS))
    return ceiling if jitter is None else jitter() * ceiling


def stepped_delay(failures: int, steps: Sequence[float]) -> float:
    """Seconds to wait after ``failures`` consecutive failures (>= 1): ``steps[failures - 1]``,
    the last step repeating for ever."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    if not steps:
        raise ValueError("the schedule is empty")
    return steps[min(failures, len(steps)) - 1]
