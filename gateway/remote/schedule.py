"""When the tunnel reconnects, how often it speaks when idle, when the certificate renews.
Pure: no I/O, no clocks read here; time and randomness come in as arguments.

The rhythm of what the gateway sends the relay for remote reach is fixed, whatever happens
at the door (docs/remote.md, "What the relay sees"):

* the tunnel's keep-alive: one snitun ping every :data:`KEEPALIVE_S` seconds, from its
  ``ClientPeer`` timer, which traffic does not reset; the relay's multiplexer closes a tunnel
  that has said nothing for 90 s;
* a new tunnel token (one signed request) each time the tunnel is opened: at start, after a
  failure, and when the relay closes a tunnel whose token has expired, which snitun checks
  every four hours (:data:`TOKEN_RECHECK_S`);
* one DNS-01 publication per certificate, when less than a third of its lifetime is left.

Only the owner's own connections add traffic, and they are the owner's, not the home's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from groundwork.backoff import doubling_delay

#: snitun's ClientPeer pings every 50 s (fixed in the library); documented here, not tuned.
KEEPALIVE_S = 50.0
#: snitun's PeerListener checks a tunnel's token every four hours.
TOKEN_RECHECK_S = 4 * 3600.0
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
#: A tunnel that failed is never reopened sooner than this: a relay that accepts and then
#: drops must not make a tight loop of signed token requests.
MIN_RETRY_S = 2.0
#: A tunnel that stayed up this long counts as healthy: the backoff starts over.
HEALTHY_AFTER_S = 60.0


def reconnect_delay(
    failures: int, *, cap_s: float, minimum_s: float, jitter: Callable[[], float]
) -> float:
    """Seconds before the next attempt after ``failures`` failures in a row (>= 1)."""
    return max(doubling_delay(failures, BACKOFF_BASE_S, cap_s, jitter=jitter), minimum_s)


def failures_after(failures: int, up_s: float | None) -> int:
    """The failure count after a tunnel ended: a tunnel that was up for a while resets it
    (``up_s`` is None when it never came up)."""
    if up_s is not None and up_s >= HEALTHY_AFTER_S:
        return 1
    return failures + 1


def renewal_due(not_before: datetime, not_after: datetime, now: datetime, fraction: float) -> bool:
    """Whether a certificate valid from ``not_before`` to ``not_after`` should be renewed now:
    when less than ``fraction`` of its lifetime is left (Let's Encrypt's advice is a third)."""
    lifetime = (not_after - not_before).total_seconds()
    left = (not_after - now).total_seconds()
    return left <= lifetime * fraction
