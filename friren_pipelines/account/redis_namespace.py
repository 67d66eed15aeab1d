"""The Redis connection and key prefix shared by the account cache and the broker rate limiter.

Every key is `<prefix><area>:<name>:<part>`; the prefix comes from `FRIREN_REDIS_PREFIX`
(default `friren:`), so tests and several deployments can share one Redis.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import redis

DEFAULT_PREFIX = "friren:"


def redis_key_prefix(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("FRIREN_REDIS_PREFIX", "").strip() or DEFAULT_PREFIX


def connect(url: str) -> redis.Redis:
    """A client with short socket timeouts: a Redis that hangs must not hang the readers."""
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
