"""What every vendor driver on the BLE link shares: its subscribers, the advertisement watch
that runs while anyone is subscribed (started by the first, stopped by the last), closing,
and the link's counters. A vendor driver (``ble.nuki.driver``, ``ble.switchbot.driver``)
builds its :class:`ble.link.LockLink` and says how to start its watch; the protocol, the
invariants and what an advertisement means stay in the vendor's own module."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ble.driver import StatusCallback
from ble.link import AdvertisementWatch, LockLink


class LinkedLockDriver:
    """The subscription and lifetime half of a :class:`ble.driver.LockDriver` on a link."""

    def __init__(self, link: LockLink) -> None:
        self._link = link
        self._callbacks: list[StatusCallback] = []
        self._watcher: AdvertisementWatch | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._closed = False

    async def _start_watcher(self) -> None:
        """Start the vendor's advertisement watch (set ``self._watcher``)."""
        raise NotImplementedError

    def subscribe(self, callback: StatusCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        if self._watcher is None and not self._closed:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(self._start_watcher())

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)
            if not self._callbacks and self._watcher is not None:
                watcher, self._watcher = self._watcher, None
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().create_task(watcher.stop())

        return unsubscribe

    async def close(self) -> None:
        self._closed = True
        if self._refresh is not None:
            self._refresh.cancel()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.stop()
        await self._link.close()

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def frames_sent(self) -> int:
        """Frames written to the lock, for the benchmark's round-trip figure."""
        return self._link.frames_sent

    @property
    def frames_received(self) -> int:
        return self._link.frames_received
