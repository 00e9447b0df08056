"""Telling systemd how the service is doing: the ``sd_notify`` datagram protocol.

The protocol (sd_notify(3), "Notify socket"): newline-separated ``KEY=VALUE`` assignments in
one datagram to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or an abstract name
starting with ``@``). The unit is ``Type=notify`` with ``WatchdogSec=``:

* ``READY=1`` once the LAN API listens, the locks are open and the store is writable;
* ``WATCHDOG=1`` every half of ``$WATCHDOG_USEC``, from a task on the event loop, so a loop
  that stops turning (a blocking call, a deadlock) stops the pings and systemd restarts the
  service, relocking on the way down;
* ``STATUS=...`` one line ``systemctl status`` shows;
* ``STOPPING=1`` when a stop begins.

Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing. Why not a library: the
maintained bindings (``systemd-python``, ``cysystemd``) compile against libsystemd, which a
plain ``pip install`` on a fresh machine does not have, and ``sdnotify`` is unmaintained; the
protocol is one datagram, specified and stable since systemd 209.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger(__name__)


class SystemdNotifier:
    """The service's side of ``$NOTIFY_SOCKET``; inert when the variable is unset."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if raw.startswith("@"):
            self._address = b"\0" + raw[1:].encode()
        elif raw.startswith("/"):
            self._address = raw
        self._watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ours = not pid or (pid.isascii() and pid.isdigit() and int(pid) == os.getpid())
        if ours and usec.isascii() and usec.isdigit() and int(usec) > 0:
            self._watchdog_s = int(usec) / 1_000_000

    @property
    def active(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half the unit's ``WatchdogSec``, or None without a watchdog."""
        return None if self._watchdog_s is None else self._watchdog_s / 2

    def notify(self, **assignments: str) -> None:
        """Send ``KEY=VALUE`` lines (keyword names are upper-cased); never raises."""
        if self._address is None:
            return
        lines = [f"{key.upper()}={value}" for key, value in assignments.items()]
        payload = "\n".join(line.replace("\n", " ") for line in lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self._address)
        except OSError as exc:
            # systemd gone (a stop in progress) must not take the gateway down with it.
            log.warning("systemd: cannot notify (%s)", exc.strerror or exc)

    def ready(self, status: str) -> None:
        self.notify(ready="1", status=status)

    def stopping(self, status: str) -> None:
        self.notify(stopping="1", status=status)

    async def keep_alive(self) -> None:
        """Ping the watchdog until cancelled (returns at once without one)."""
        interval = self.watchdog_interval_s
        if interval is None or self._address is None:
            return
        while True:
            self.notify(watchdog="1")
            await asyncio.sleep(interval)
