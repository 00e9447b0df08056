"""Supervised background jobs: each runs forever, is restarted with backoff when it fails,
and is cancelled in order at shutdown.

A job is a coroutine factory. A job that returns is run again after its period; one that
raises is logged with its traceback (never lost in an unawaited task) and restarted after a
backoff that doubles up to a cap (:func:`groundwork.backoff.doubling_delay`), so a persistent
fault does not spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from groundwork.backoff import doubling_delay

log = logging.getLogger("threshold.supervisor")

Job = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class JobState:
    name: str
    runs: int = 0
    failures: int = 0
    #: Set after the first successful run (start-up checks and tests wait on it).
    ran: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Supervisor:
    restart_initial_s: float = 1.0
    restart_max_s: float = 60.0
    jobs: dict[str, JobState] = field(default_factory=dict)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def start(self, name: str, job: Job, every_s: float) -> None:
        state = JobState(name)
        self.jobs[name] = state
        self._tasks[name] = asyncio.ensure_future(self._loop(state, job, every_s))

    async def _loop(self, state: JobState, job: Job, every_s: float) -> None:
        in_a_row = 0  # failures since the last success
        while True:
            try:
                await job()
                state.runs += 1
                state.ran.set()
                in_a_row = 0
                await asyncio.sleep(every_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                state.failures += 1
                in_a_row += 1
                delay = doubling_delay(in_a_row, self.restart_initial_s, self.restart_max_s)
                log.exception("job %s failed; restarting in %.1f s", state.name, delay)
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
