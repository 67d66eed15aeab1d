"""The Redis connection shared by the account cache, the broker rate limiter and the bar reader.

Every key is `<prefix><area>:<name>:<part>`; the prefix is the setting `FRIREN_REDIS_PREFIX`
(default `friren:`), so tests and several deployments can share one Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis


def connect(url: str) -> redis.Redis:
    """A client with short socket timeouts: a Redis that hangs must not hang the readers."""
    import redis  # imported on first use: loading the definitions needs no Redis client

    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
