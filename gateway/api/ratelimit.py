"""Token-bucket rate limits for the LAN API, keyed by client address or ticket id. Pure.

A bucket holds up to ``per_minute`` tokens and refills continuously; each request takes one.
The table of buckets is bounded: when it is full the least recently used bucket is dropped,
so a flood from many addresses costs memory proportional to ``max_keys``, not to the flood.
"""

from __future__ import annotations

from collections import OrderedDict


class RateLimiter:
    def __init__(self, per_minute: int, *, burst: int | None = None, max_keys: int = 10_000):
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, per_minute))
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def tracked_keys(self) -> int:
        """How many buckets the table holds now (never more than ``max_keys``)."""
        return len(self._buckets)

    def allow(self, key: str, now: float) -> bool:
        tokens, stamp = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - stamp) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, key: str) -> float:
        tokens, _ = self._buckets.get(key, (self.capacity, 0.0))
        return max(0.0, (1.0 - tokens) / self.rate) if self.rate > 0 else 60.0
