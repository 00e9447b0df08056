"""Supervised jobs: a failing job is logged and restarted with backoff; stop cancels all."""

from __future__ import annotations

import asyncio

from gateway.app.supervisor import Supervisor


async def test_failing_job_is_restarted_and_stop_cancels() -> None:
    calls: list[int] = []
    enough = asyncio.Event()

    async def flaky() -> None:
        calls.append(len(calls))
        if len(calls) >= 4:
            enough.set()
        if len(calls) % 2 == 1:
            raise RuntimeError("transient")

    sup = Supervisor(restart_initial_s=0.001, restart_max_s=0.002)
    sup.start("flaky", flaky, every_s=0.001)
    await asyncio.wait_for(enough.wait(), 5)
    await sup.stop()
    state = sup.jobs["flaky"]
    assert state.failures >= 2
    assert state.runs >= 1
    count = len(calls)
    await asyncio.sleep(0.01)
    assert len(calls) == count  # nothing runs after stop
