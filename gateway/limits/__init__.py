"""Rate limits (GCRA) and concurrency slots (leases), in memory or in Redis.

    Limiter (protocol, base.py)
    ├── MemoryLimiter   one replica; injectable clock (memory.py)
    └── RedisLimiter    many replicas; Lua scripts, Redis server time (redis.py)

`open_limiter` is the one place that picks the implementation from a URL.
"""

from __future__ import annotations

from gateway.limits.base import (
    Limiter,
    LimiterUnavailable,
    RateDecision,
    RateLimit,
    RateRequest,
    SlotDecision,
)
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter

__all__ = [
    "Limiter",
    "LimiterUnavailable",
    "MemoryLimiter",
    "RateDecision",
    "RateLimit",
    "RateRequest",
    "RedisLimiter",
    "SlotDecision",
    "open_limiter",
]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_limiter(url: str | None, *, prefix: str = "tgw:") -> Limiter:
    """None or "memory": a `MemoryLimiter`; a redis:// URL: a `RedisLimiter`.

    The limiter is not started; the caller awaits `start()` (and `close()`).
    """
    if url is None or url == "memory":
        return MemoryLimiter()
    if url.startswith(_REDIS_SCHEMES):
        return RedisLimiter(url, prefix=prefix)
    raise ValueError(f"limiter url must be 'memory' or redis://…, got {url!r}")
