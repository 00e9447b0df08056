"""The camera's reconnect schedule: how long to wait after each consecutive failure.

The steps are go2rtc's: 1 s five times, then 5 s, 10 s, and 60 s from then on. A camera that
reboots is back within the fast steps; one that is unplugged is not hammered.
"""

from __future__ import annotations

RECONNECT_SCHEDULE_S: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 10.0, 60.0)


def reconnect_delay(failures: int, schedule: tuple[float, ...] = RECONNECT_SCHEDULE_S) -> float:
    """Seconds to wait before the next attempt after ``failures`` consecutive failures (>= 1).

    The last step repeats for ever.
    """
    if failures < 1:
        raise ValueError("failures counts from 1")
    if not schedule:
        raise ValueError("the schedule is empty")
    return schedule[min(failures, len(schedule)) - 1]
