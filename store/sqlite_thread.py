"""One ``sqlite3`` connection and the one thread that uses it.

``Store`` keeps a writer and a reader connection, each owned by a thread of its own, and
hands each thread whole functions: a transaction (BEGIN, its statements, COMMIT) is one
hop to the thread and back, not one per statement (see docs/audit-log.md). The connection is
created in its thread and never leaves it, so ``sqlite3``'s same-thread check stays on.

The thread is ours rather than a ``ThreadPoolExecutor`` reached with ``run_in_executor``:
both are public and correct, but the executor's extra future chaining cost about 35 µs more per
hop on the reference machine, some 6% of a durable append. Only public APIs are used
(``threading``, ``queue``, ``loop.call_soon_threadsafe``).

Jobs run one at a time, in the order they were submitted. A job whose caller stopped
waiting (a cancelled task) still runs to its end: a transaction is never cut in half, and
``close()`` comes after every job submitted before it. The thread is a daemon, so a store
someone forgot to close cannot keep the process alive; closing stays part of an orderly
shutdown, because it is what closes the database file.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Job(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    # Runs in the event loop. A cancelled caller already has its answer.
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SqliteThread:
    """A ``sqlite3`` connection reached only through its own thread. Always ``close()``."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()

    @classmethod
    async def connect(
        cls, database: str, *, uri: bool = False, busy_timeout_s: float, name: str
    ) -> SqliteThread:
        """Open ``database`` (autocommit: the store issues BEGIN/COMMIT) in a new thread.

        Raises ``sqlite3.Error`` as ``sqlite3.connect`` does; the thread has ended by then.
        """
        owner = cls()
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        threading.Thread(
            target=owner._serve,
            args=(database, uri, busy_timeout_s, opened, loop),
            name=f"threshold-{name}",
            daemon=True,
        ).start()
        try:
            await asyncio.shield(opened)
        except asyncio.CancelledError:
            owner._jobs.put(None)  # the thread closes what it opens, then ends
            raise
        return owner

    def _serve(
        self,
        database: str,
        uri: bool,
        busy_timeout_s: float,
        opened: asyncio.Future[None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        try:
            conn = sqlite3.connect(database, uri=uri, timeout=busy_timeout_s, isolation_level=None)
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, opened, False, exc)
            return
        loop.call_soon_threadsafe(_settle, opened, True, None)
        try:
            while (job := self._jobs.get()) is not None:
                try:
                    result = job.fn(conn)
                except BaseException as exc:
                    job.loop.call_soon_threadsafe(_settle, job.future, False, exc)
                else:
                    job.loop.call_soon_threadsafe(_settle, job.future, True, result)
        finally:
            conn.close()

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(fn, future, loop))
        return future

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in the connection's thread: one hop, whatever ``fn`` does."""
        return await self._submit(fn)

    async def close(self) -> None:
        """Close the connection after every job already submitted; the thread then ends.

        The close is shielded: a caller cancelled meanwhile does not leave the file open.
        """
        closed = self._submit(lambda conn: conn.close())
        self._jobs.put(None)
        await asyncio.shield(closed)
