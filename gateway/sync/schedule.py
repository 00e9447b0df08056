"""When the sync task tries again: its backoff bounds, its minimum retry interval, Retry-After.

How far a relay's signed time may move the time floor is the trust layer's rule, not the
schedule's (:func:`gateway.trust.clock.raised_floor_ms`): one rule for every outside source.

Pure: no I/O, no clocks read here; time and randomness come in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parsedate_to_datetime

from groundwork.backoff import doubling_delay

# A failed round is retried after groundwork.backoff.doubling_delay with full jitter, from
# BACKOFF_BASE_S up to a cap (SyncConfig.backoff_cap_s), but never sooner than MIN_RETRY_S.
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
MAX_RETRY_AFTER_S = 3600.0
#: The floor on the interval between a failed round and the next (issue 11, finding 1): full
#: jitter alone can draw almost nothing, and a relay answering 503 without Retry-After must
#: not be able to make the gateway come back in a tight loop (each round signs a request,
#: reads the store and asks for the relay's time). Retry-After can lengthen it, never shorten.
MIN_RETRY_S = 10.0


def retry_after_s(header: str | None, now_s: float) -> float | None:
    """RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date; capped; None if absent."""
    if header is None:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(0.0, when - now_s), MAX_RETRY_AFTER_S)


def retry_delay(
    failures: int,
    hint_s: float | None,
    *,
    cap_s: float,
    minimum_s: float,
    jitter: Callable[[], float],
) -> float:
    """Seconds from a failed round to the next: the jittered doubling backoff, lengthened to
    the relay's ``Retry-After`` hint if it gave one, and never below ``minimum_s``."""
    delay = doubling_delay(failures, BACKOFF_BASE_S, cap_s, jitter=jitter)
    if hint_s is not None:
        delay = max(delay, hint_s)
    return max(delay, minimum_s)
