"""What only the Redis limiter has: key layout, TTLs, errors, replicas.

Three `RedisLimiter`s, each with its own connection pool, stand for three
gateway replicas sharing one Redis.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.limits import (
    LimiterUnavailable,
    MemoryLimiter,
    RateLimit,
    RateRequest,
    RedisLimiter,
    open_limiter,
)
from tests.limits.conftest import REDIS_URL, RedisFactory

PER_MINUTE = RateLimit(limit=50, period_s=60.0)


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def replicas(make_redis: RedisFactory, count: int = 3) -> list[RedisLimiter]:
    return [await make_redis() for _ in range(count)]


async def test_three_replicas_admit_exactly_the_tenant_limit(make_redis: RedisFactory) -> None:
    limiters = itertools.cycle(await replicas(make_redis))
    request = RateRequest(key="tenant:a:rpm", limit=PER_MINUTE, name="requests_per_minute")
    calls = [next(limiters).acquire([request]) for _ in range(300)]
    decisions = await asyncio.gather(*calls)
    assert sum(d.allowed for d in decisions) == 50
    assert all(d.refused == request and d.retry_after_s > 0 for d in decisions if not d.allowed)


async def test_three_replicas_never_overrun_the_global_cap(make_redis: RedisFactory) -> None:
    limiters = itertools.cycle(await replicas(make_redis))
    per_hour = RateLimit(limit=100, period_s=3600.0)
    tenants = [f"tenant:{name}:ipm" for name in "abcd"]
    global_cap = RateRequest(key="global:ipm", limit=RateLimit(limit=30, period_s=3600.0))

    def call(i: int) -> RateRequest:
        return RateRequest(key=tenants[i % 4], limit=per_hour)

    decisions = await asyncio.gather(
        *(next(limiters).acquire([call(i), global_cap]) for i in range(200))
    )
    assert sum(d.allowed for d in decisions) == 30
    # All-or-nothing: the tenants were charged for the admitted calls only.
    probe = next(limiters)
    used = [100 - await probe.peek(RateRequest(key=key, limit=per_hour)) for key in tenants]
    assert sum(used) == pytest.approx(30, abs=0.1)


async def test_three_replicas_admit_exactly_max_slots(make_redis: RedisFactory) -> None:
    limiters = itertools.cycle(await replicas(make_redis))
    calls = [next(limiters).acquire_slot("tenant:a:concurrent", 5, lease_s=30) for _ in range(60)]
    decisions = await asyncio.gather(*calls)
    assert sum(d.allowed for d in decisions) == 5


async def test_three_replicas_never_hold_more_than_max_slots(make_redis: RedisFactory) -> None:
    pool = await replicas(make_redis)
    held, most = 0, 0

    async def worker(limiter: RedisLimiter) -> None:
        nonlocal held, most
        for _ in range(8):
            slot = await limiter.acquire_slot("tenant:a:concurrent", 5, lease_s=5)
            if slot.slot_id is None:
                await asyncio.sleep(0.002)
                continue
            held += 1  # counted after Redis granted it, uncounted before release
            most = max(most, held)
            await asyncio.sleep(0.01)
            held -= 1
            await limiter.release_slot("tenant:a:concurrent", slot.slot_id)

    await asyncio.gather(*(worker(pool[i % 3]) for i in range(30)))
    assert most == 5


async def test_bursts_larger_than_the_pool_wait_for_a_connection(
    make_redis: RedisFactory,
) -> None:
    limiter = await make_redis(max_connections=4)
    request = RateRequest(key="tenant:a:rpm", limit=PER_MINUTE)
    decisions = await asyncio.gather(*(limiter.acquire([request]) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 50


async def test_a_dead_replicas_slots_come_back_when_leases_end(make_redis: RedisFactory) -> None:
    doomed, survivor = await replicas(make_redis, count=2)
    for _ in range(5):
        assert (await doomed.acquire_slot("tenant:a:concurrent", 5, lease_s=0.3)).allowed
    await doomed.close()  # dies without releasing
    refused = await survivor.acquire_slot("tenant:a:concurrent", 5, lease_s=0.3)
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 0.3
    await asyncio.sleep(refused.retry_after_s + 0.01)
    assert (await survivor.acquire_slot("tenant:a:concurrent", 5, lease_s=0.3)).allowed


async def test_keys_live_only_as_long_as_their_state(
    make_redis: RedisFactory, raw: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = await make_redis()
    limit = RateLimit(limit=5, period_s=0.2)
    await limiter.acquire([RateRequest(key="tenant:a:rpm", limit=limit, cost=5)])
    await limiter.acquire_slot("tenant:a:concurrent", 2, lease_s=0.25)
    assert 0 < await raw.pttl(f"{redis_prefix}rate:tenant:a:rpm") <= 201
    assert 0 < await raw.pttl(f"{redis_prefix}slots:tenant:a:concurrent") <= 251
    await asyncio.sleep(0.3)
    assert [key async for key in raw.scan_iter(match=f"{redis_prefix}*")] == []


async def test_renew_extends_the_key_ttl(
    make_redis: RedisFactory, raw: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = await make_redis()
    slot = await limiter.acquire_slot("tenant:a:concurrent", 2, lease_s=0.2)
    assert slot.slot_id is not None
    assert await limiter.renew_slot("tenant:a:concurrent", slot.slot_id, lease_s=10)
    assert await raw.pttl(f"{redis_prefix}slots:tenant:a:concurrent") > 9000


async def test_prefixes_keep_gateways_apart(make_redis: RedisFactory, redis_prefix: str) -> None:
    ours = await make_redis()
    theirs = RedisLimiter(REDIS_URL, prefix=f"{redis_prefix}other:")
    await theirs.start()
    try:
        request = RateRequest(key="tenant:a:rpm", limit=RateLimit(limit=1, period_s=60))
        assert (await ours.acquire([request])).allowed
        assert (await theirs.acquire([request])).allowed
    finally:
        await theirs.close()


async def test_unreachable_redis_raises_limiter_unavailable() -> None:
    limiter = RedisLimiter("redis://127.0.0.1:1/0", timeout_s=0.5)
    try:
        with pytest.raises(LimiterUnavailable, match="connect"):
            await limiter.start()
        with pytest.raises(LimiterUnavailable, match="acquire"):
            await limiter.acquire([RateRequest(key="k", limit=PER_MINUTE)])
    finally:
        await limiter.close()


async def test_open_limiter_picks_the_implementation_from_the_url() -> None:
    assert isinstance(open_limiter(None), MemoryLimiter)
    assert isinstance(open_limiter("memory"), MemoryLimiter)
    redis_limiter = open_limiter(REDIS_URL)
    assert isinstance(redis_limiter, RedisLimiter)
    await redis_limiter.close()
    with pytest.raises(ValueError, match="limiter url"):
        open_limiter("memcached://127.0.0.1")
