"""Background priority for the camera's heavy work, so that the access path stays quick.

Decoding pictures (motion, snapshots) is the camera's dearest work: a 1080p snapshot decodes
up to a keyframe interval of pictures, and four cameras take four at every grant. On a small
gateway with two cores that work competed with the event loop, which runs the grant itself
(the write-ahead commit, the lock's Bluetooth exchange). Threads doing it lower their own
scheduling priority (a nice value of :data:`BACKGROUND_NICE`; Linux sets it per thread): the
pictures are still decoded whenever a core is free, and never ahead of a door.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import threading

BACKGROUND_NICE = 10


def lower_thread_priority() -> None:
    """Lower the calling thread's priority (Linux: per thread; elsewhere: nothing)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        # On Linux, PRIO_PROCESS with a thread id sets that thread alone. Lowering one's own
        # priority needs no privilege.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def background_executor(name: str, workers: int = 1) -> concurrent.futures.ThreadPoolExecutor:
    """A thread pool whose threads run at background priority."""
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix=name, initializer=lower_thread_priority
    )
