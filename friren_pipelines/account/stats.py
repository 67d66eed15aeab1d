"""Counters of the account cache: how often it answered, from where, and what it saved.

Counted per account label, shared by every process using the same Redis (a hash at
`<prefix>account:<label>:stats`), or per process with the in-process cache.
"""

from __future__ import annotations

from dataclasses import dataclass

COUNTERS = ("requests", "hits", "broker_calls", "errors", "stale_answers", "unanswered")


@dataclass(frozen=True)
class CacheStatistics:
    """Counts since the counters were created.

    requests: reads of the snapshot. hits: reads answered by a value younger than the TTL
    without waiting. misses: the other reads (expired or absent value). broker_calls: refresh
    attempts sent to the broker. errors: refresh attempts that failed. stale_answers: reads
    answered with a value older than the TTL. unanswered: reads that raised because no value
    young enough existed. degraded: why Redis is not in use, or None; while it is not, the
    counts are this process's since the outage began (they are added to Redis when it returns).
    """

    requests: int = 0
    hits: int = 0
    broker_calls: int = 0
    errors: int = 0
    stale_answers: int = 0
    unanswered: int = 0
    degraded: str | None = None

    @property
    def misses(self) -> int:
        return self.requests - self.hits

    @property
    def broker_calls_saved(self) -> int:
        """Reads answered without a broker call of their own: requests - broker_calls."""
        return max(0, self.requests - self.broker_calls)

    @property
    def hit_ratio(self) -> float:
        """hits / requests, in [0, 1]; 0.0 before the first request."""
        return self.hits / self.requests if self.requests else 0.0

    @classmethod
    def from_counts(cls, counts: dict[str, int], degraded: str | None = None) -> CacheStatistics:
        return cls(**{name: int(counts.get(name, 0)) for name in COUNTERS}, degraded=degraded)

    def as_metadata(self) -> dict[str, int | float | str]:
        """Plain values for Dagster metadata and the CLI (no secrets can appear here):
        numbers, plus `degraded_reason` while Redis is unreachable."""
        return {
            "requests": self.requests,
            "hits": self.hits,
            "misses": self.misses,
            "broker_calls": self.broker_calls,
            "broker_calls_saved": self.broker_calls_saved,
            "errors": self.errors,
            "stale_answers": self.stale_answers,
            "unanswered": self.unanswered,
            "hit_ratio": round(self.hit_ratio, 6),
            "redis_degraded": int(self.degraded is not None),
            **({"degraded_reason": self.degraded} if self.degraded else {}),
        }
