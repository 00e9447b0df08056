"""Seal keys made ahead of time, so an audit append does not wait for X25519.

Each sealed entry needs a fresh ephemeral X25519 key and a key exchange with the owner's key
(:class:`gateway.trust.seal.SealKey`, about 60 µs of CPU), which do not depend on the entry.
:class:`SealKeyPool` keeps up to ``depth`` of them, made by one background thread while the
gateway is otherwise idle or waiting on a disk flush (libsodium runs without the GIL), and
hands each one out exactly once: it leaves the pool when taken. When the pool is empty (a
burst of appends, or no thread started) the key is made on the spot, as before. The total
work is the same; what changes is that it is off the append's path.

The thread refills in batches: it is woken when the pool is down to half its depth and then
makes keys until it is full, rather than being woken for each key taken. Woken during an
append, it competed with the append's thread for the GIL at each of that append's SQLite
calls (docs/audit-log.md, "Performance"); now that happens in one append of every
``depth / 2``, and a gateway, whose appends come a few per visit, never drains it that far.

The keys are secret (each is one entry's box key) and live only in this process's memory,
like the entries themselves before they are sealed; nothing is written anywhere.
"""

from __future__ import annotations

import collections
import threading

from gateway.trust.seal import Sealer, SealKey

DEFAULT_DEPTH = 64


class SealKeyPool:
    """``seal(entry)`` with a key made ahead (the store's ``seal`` hook). ``start()`` the
    refilling thread, ``close()`` it (always)."""

    def __init__(self, sealer: Sealer, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 1:
            raise ValueError("a seal key pool holds at least one key")
        self._sealer = sealer
        self._depth = depth
        self._low = depth // 2  # refill from here, up to depth
        self._keys: collections.deque[SealKey] = collections.deque()
        lock = threading.Lock()
        self._wanted = threading.Condition(lock)  # the refiller waits for a taken key
        self._made = threading.Condition(lock)  # wait_ready waits for a made one
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or self._closed:
            raise RuntimeError("a seal key pool starts once")
        self._thread = threading.Thread(
            target=self._refill, name="threshold-seal-keys", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        with self._wanted:
            self._closed = True
            self._keys.clear()
            self._wanted.notify_all()
        if self._thread is not None:
            self._thread.join()

    def take(self) -> SealKey:
        """A key nobody else gets: made ahead when one is ready, else now."""
        with self._wanted:
            key = self._keys.popleft() if self._keys else None
            if len(self._keys) <= self._low:
                self._wanted.notify()
        return key if key is not None else self._sealer.fresh_key()

    def seal(self, entry: bytes) -> bytes:
        return self._sealer.seal(entry, self.take())

    def __call__(self, entry: bytes) -> bytes:
        return self.seal(entry)

    def wait_ready(self, count: int, timeout_s: float) -> bool:
        """Wait until ``count`` keys are made ahead (a warm start); False on timeout."""
        with self._made:
            return (
                self._made.wait_for(
                    lambda: self._closed or len(self._keys) >= min(count, self._depth), timeout_s
                )
                and not self._closed
            )

    @property
    def ready(self) -> int:
        """Keys made and not yet taken."""
        return len(self._keys)

    def _refill(self) -> None:
        while True:
            with self._wanted:
                while not self._closed and len(self._keys) > self._low:
                    self._wanted.wait()
                if self._closed:
                    return
            while True:  # a batch: up to full
                key = self._sealer.fresh_key()  # outside the lock: appends never wait for it
                with self._wanted:
                    if self._closed:
                        return
                    self._keys.append(key)
                    self._made.notify_all()
                    if len(self._keys) >= self._depth:
                        break
