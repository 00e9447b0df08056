"""The Bumble host the gateway's BLE backend runs, without Bumble's per-packet debug text.

Bumble's ``Host.on_hci_packet`` builds an f-string of every packet from the controller for
``logger.debug`` before the logging module can say the level is off. An advertising report
costs about 0.16 ms of CPU to format; a lock beaconing every 20 ms while the driver watches
for its new-state flag made that a fifth of a busy gateway's CPU (measured with cProfile on
tests/support/observer.py's busy day: 9 of 43 CPU seconds), and a real home has many more
advertisers than one lock. Events (advertising reports are events) take a path here that
skips the text unless Bumble's host logger is on for debug; everything else is Bumble's.
"""

from __future__ import annotations

import logging

from bumble import hci
from bumble.host import Host
from bumble.snoop import Snooper

_BUMBLE_HOST_LOG = logging.getLogger("bumble.host")


class QuietHost(Host):
    """A Bumble ``Host`` that formats a controller's events only when someone will read them."""

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if not isinstance(packet, hci.HCI_Event) or _BUMBLE_HOST_LOG.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
            return
        if self.snooper:
            self.snooper.snoop(bytes(packet), Snooper.Direction.CONTROLLER_TO_HOST)
        self.on_hci_event_packet(packet)
