"""The relay's request budget: token buckets per client address and one for everyone. Pure.

A bucket holds up to ``burst`` tokens and refills at ``per_minute``; each request takes one.
The per-address table is bounded (``max_keys``), and its eviction never refunds: it drops
only a bucket that has refilled completely, which holds exactly what a new bucket would. When
the table is full and no bucket in it can go, an address the table cannot hold is charged to
one shared overflow bucket, so a flood from many addresses limits itself instead of pushing
a limited address out of the table (issue 11, finding 11). The global bucket caps what every
address together may cost the relay's single storage thread.

Time is an argument (monotonic seconds); the caller owns the clock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_minute`` tokens a minute, at most ``burst`` saved up."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError("a rate needs a positive refill and a burst of at least 1")

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    stamp: float

    def refilled(self, rate: Rate, now: float) -> Bucket:
        gained = max(0.0, now - self.stamp) * rate.per_second
        return Bucket(min(float(rate.burst), self.tokens + gained), max(now, self.stamp))

    def wait(self, rate: Rate) -> float:
        """Seconds until this bucket holds a whole token."""
        return max(0.0, (1.0 - self.tokens) / rate.per_second)


class BucketTable:
    """Token buckets keyed by a string: at most ``max_keys`` of them, least recent first, and
    the overflow bucket shared by the keys the table cannot hold."""

    def __init__(self, rate: Rate, *, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError("the table must hold at least one key")
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._overflow: Bucket | None = None

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """Take a token for ``key``: 0.0 when there was one, else the seconds to wait."""
        if key in self._buckets:
            bucket = self._buckets.pop(key)
        elif self._has_room(now):
            bucket = Bucket(float(self.rate.burst), now)
        else:
            bucket = self._overflow or Bucket(float(self.rate.burst), now)
            self._overflow, wait = self._spend(bucket, now)
            return wait
        self._buckets[key], wait = self._spend(bucket, now)
        return wait

    def _has_room(self, now: float) -> bool:
        if len(self._buckets) < self.max_keys:
            return True
        # The least recently used bucket has had the longest to refill. If even it is not
        # full, dropping it would hand its address a fresh burst: keep it.
        oldest_key, oldest = next(iter(self._buckets.items()))
        if oldest.refilled(self.rate, now).tokens < self.rate.burst:
            return False
        del self._buckets[oldest_key]
        return True

    def _spend(self, bucket: Bucket, now: float) -> tuple[Bucket, float]:
        bucket = bucket.refilled(self.rate, now)
        if bucket.tokens >= 1.0:
            return Bucket(bucket.tokens - 1.0, bucket.stamp), 0.0
        return bucket, bucket.wait(self.rate)


class RequestBudget:
    """A per-address limit and a global one; a request must pass both."""

    def __init__(self, per_client: Rate, overall: Rate, *, max_clients: int = 10_000) -> None:
        self._clients = BucketTable(per_client, max_keys=max_clients)
        self._overall = BucketTable(overall, max_keys=1)

    def take(self, client: str, now: float) -> float:
        """0.0 when the request may go ahead, else the seconds the client should wait.

        A request refused for its address costs the global budget nothing, so one noisy
        address cannot shut everyone else out."""
        wait = self._clients.take(client, now)
        if wait > 0.0:
            return wait
        return self._overall.take("", now)
