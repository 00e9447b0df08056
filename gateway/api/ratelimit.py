"""Token-bucket rate limits for the LAN API, keyed by client address or ticket id. Pure.

A bucket holds up to ``per_minute`` tokens and refills continuously; each request takes one.
The table of buckets is bounded (``max_keys``), so a flood from many addresses or ticket ids
costs memory proportional to ``max_keys``, not to the flood.

Forgetting a bucket must never refund it: a key forgotten while drawn down would come back
full, so a flood of junk keys could reset an exhausted ticket's bucket (issue 11 #11). So
only a bucket that has refilled completely is ever dropped (dropping it loses nothing), and
while the least recently used bucket is still drawn down, newcomers share one overflow
bucket instead of a table entry of their own: during such a flood new keys are limited
together, and no limited key is let off.
"""

from __future__ import annotations

from collections import OrderedDict


class RateLimiter:
    def __init__(self, per_minute: int, *, burst: int | None = None, max_keys: int = 10_000):
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, per_minute))
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._overflow: tuple[float, float] | None = None

    def _refilled(self, bucket: tuple[float, float], now: float) -> float:
        tokens, stamp = bucket
        return min(self.capacity, tokens + max(0.0, now - stamp) * self.rate)

    def _make_room(self, now: float) -> bool:
        """Drop the least recently used bucket if that refunds nothing; False if it would."""
        while len(self._buckets) >= self.max_keys:
            oldest = next(iter(self._buckets.values()))
            if self._refilled(oldest, now) < self.capacity:
                return False
            self._buckets.popitem(last=False)
        return True

    @property
    def tracked_keys(self) -> int:
        """How many buckets the table holds now (never more than ``max_keys``)."""
        return len(self._buckets)

    def allow(self, key: str, now: float) -> bool:
        bucket = self._buckets.pop(key, None)
        if bucket is None and not self._make_room(now):
            # Table full of drawn-down buckets: this newcomer draws on the shared overflow.
            tokens = self._refilled(self._overflow or (self.capacity, now), now)
            allowed = tokens >= 1.0
            self._overflow = (tokens - 1.0 if allowed else tokens, now)
            return allowed
        tokens = self._refilled(bucket or (self.capacity, now), now)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        return allowed

    def retry_after(self, key: str) -> float:
        bucket = self._buckets.get(key) or self._overflow or (self.capacity, 0.0)
        tokens = bucket[0]
        return max(0.0, (1.0 - tokens) / self.rate) if self.rate > 0 else 60.0

    def __len__(self) -> int:
        """How many keys have a bucket of their own (bounded by ``max_keys``)."""
        return len(self._buckets)
