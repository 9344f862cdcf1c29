"""Limiter shared by replicas through one Redis (standalone or Sentinel).

Each operation is one round trip: an EVALSHA of a script from
`gateway.limits.redis_scripts` (redis-py loads it on NOSCRIPT), so check and
update are atomic on the server however many replicas race. Keys carry TTLs
that end when the state would be rested anyway, so idle tenants cost nothing.

Keys: `<prefix>rate:<key>` (a TAT in µs of server time) and
`<prefix>slots:<key>` (a ZSET of slot id -> lease expiry in ms). One `acquire`
touches several keys in one script, so on Redis Cluster they would all need
one hash slot; this limiter targets a single Redis.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.limits import gcra, redis_scripts
from gateway.limits.base import (
    LimiterUnavailable,
    RateDecision,
    RateRequest,
    SlotDecision,
    check_slot_args,
    never_admitted,
)

_US = 1_000_000
_MS = 1_000


class RedisLimiter:
    """GCRA rates and leased slots in Redis, timed by the Redis server's clock.

    Construction does no I/O; `start` connects (and fails fast if Redis is
    unreachable), `close` releases the connection pool. Redis failures raise
    `LimiterUnavailable`.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "tgw:",
        timeout_s: float = 1.0,
        max_connections: int = 32,
    ) -> None:
        self._prefix = prefix
        # A blocking pool queues callers for a free connection (up to
        # timeout_s) instead of failing when a burst outnumbers the pool, and
        # bounds each replica's connections to Redis.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self._redis = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self._acquire = self._redis.register_script(redis_scripts.ACQUIRE)
        self._acquire_slot = self._redis.register_script(redis_scripts.ACQUIRE_SLOT)
        self._renew_slot = self._redis.register_script(redis_scripts.RENEW_SLOT)

    async def start(self) -> None:
        with _unavailable_on_error("connect"):
            await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    async def acquire(self, requests: Sequence[RateRequest]) -> RateDecision:
        impossible = never_admitted(requests)
        if impossible is not None:
            return impossible
        if not requests:
            return RateDecision(allowed=True)
        keys = [self._rate_key(request.key) for request in requests]
        args: list[str | int] = []
        for request in requests:
            limit = request.limit
            args += [repr(limit.interval_s * _US), limit.capacity, request.cost]
        with _unavailable_on_error("acquire"):
            index, wait_us = await self._acquire(keys=keys, args=args)
        if int(index) == 0:
            return RateDecision(allowed=True)
        refused = requests[int(index) - 1]
        return RateDecision(allowed=False, refused=refused, retry_after_s=float(wait_us) / _US)

    async def peek(self, request: RateRequest) -> float:
        # Two reads in one round trip; they need not be atomic for a usage report.
        pipe = self._redis.pipeline(transaction=False)
        pipe.time()
        pipe.get(self._rate_key(request.key))
        with _unavailable_on_error("peek"):
            (seconds, micros), tat = await pipe.execute()
        now = float(seconds) + float(micros) / _US
        tat_s = None if tat is None else float(tat) / _US
        return gcra.available(tat_s, now, request.limit)

    async def acquire_slot(self, key: str, max_slots: int, *, lease_s: float) -> SlotDecision:
        check_slot_args(max_slots, lease_s)
        slot_id = uuid.uuid4().hex
        args: list[str | int] = [max_slots, _lease_ms(lease_s), slot_id]
        with _unavailable_on_error("acquire_slot"):
            granted, wait_ms = await self._acquire_slot(keys=[self._slot_key(key)], args=args)
        if int(granted):
            return SlotDecision(allowed=True, slot_id=slot_id)
        return SlotDecision(allowed=False, retry_after_s=float(wait_ms) / _MS)

    async def release_slot(self, key: str, slot_id: str) -> None:
        with _unavailable_on_error("release_slot"):
            await self._redis.zrem(self._slot_key(key), slot_id)

    async def renew_slot(self, key: str, slot_id: str, *, lease_s: float) -> bool:
        check_slot_args(1, lease_s)
        args: list[str | int] = [slot_id, _lease_ms(lease_s)]
        with _unavailable_on_error("renew_slot"):
            renewed: Any = await self._renew_slot(keys=[self._slot_key(key)], args=args)
        return bool(int(renewed))

    def _rate_key(self, key: str) -> str:
        return f"{self._prefix}rate:{key}"

    def _slot_key(self, key: str) -> str:
        return f"{self._prefix}slots:{key}"


def _lease_ms(lease_s: float) -> int:
    """Leases are kept in whole ms; round up so a lease is never shorter than asked."""
    return max(1, math.ceil(lease_s * _MS))


@contextmanager
def _unavailable_on_error(operation: str) -> Iterator[None]:
    """Map redis-py's errors to the gateway's tree, keeping the cause."""
    try:
        yield
    except RedisError as exc:
        raise LimiterUnavailable(f"rate limiter {operation} failed: {exc}") from exc
