"""When the sync task tries again (its backoff bounds, Retry-After), and how far one relay's
clock may move the time floor.

Pure: no I/O, no clocks read here; time and randomness come in as arguments.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

# A failed round is retried after groundwork.backoff.doubling_delay with full jitter, from
# BACKOFF_BASE_S up to a cap (SyncConfig.backoff_cap_s).
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
MAX_RETRY_AFTER_S = 3600.0


def retry_after_s(header: str | None, now_s: float) -> float | None:
    """RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date; capped; None if absent."""
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when - now_s), MAX_RETRY_AFTER_S)


def raised_time_floor(floor_ms: int, local_now_ms: int, cloud_ms: int, max_skew_ms: int) -> int:
    """The time floor after hearing ``cloud_ms`` from one relay.

    The floor only rises. One source may lift it to its time, but never more than
    ``max_skew_ms`` past the higher of the floor and the local clock, so a lying relay can
    shift the gateway's notion of time by at most the skew. The local clock itself is never
    set back (nothing here lowers anything).
    """
    ceiling = max(floor_ms, local_now_ms) + max_skew_ms
    return max(floor_ms, min(cloud_ms, ceiling))
