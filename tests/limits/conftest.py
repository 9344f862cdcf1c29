"""Fixtures for the limiter contract: each test runs against both limiters.

`MemoryLimiter` runs on a fake clock, so its waits are instant and exact.
`RedisLimiter` runs on the real Redis at 127.0.0.1:6379 (CI starts it; if it is
not reachable the tests fail rather than skip) under a random key prefix that
is deleted afterwards. Redis scripts read the server's clock, which no test can
fake, so its waits are real sleeps: the shared tests use short periods and
assert on admitted counts, with timing bounds loose enough for a busy machine.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.limits import Limiter, LimiterUnavailable, MemoryLimiter, RedisLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"

# Real sleeps overshoot a little; a Redis wait adds this so "wait retry_after"
# cannot land a scheduler tick early.
SLEEP_MARGIN_S = 0.002


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """A started limiter, how to let time pass for it, and how exact time is.

    `slack` is the timing error a test must tolerate: 0 on the fake clock,
    tens of milliseconds against a real server.
    """

    limiter: Limiter
    wait: Callable[[float], Awaitable[None]]
    slack: float


async def _real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds + SLEEP_MARGIN_S)


RedisFactory = Callable[..., Awaitable[RedisLimiter]]


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to the test (`make_redis` deletes its keys)."""
    return f"tgw-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def make_redis(redis_prefix: str) -> AsyncIterator[RedisFactory]:
    """Start RedisLimiters (each its own pool: one per replica) on one prefix.

    Nothing connects unless a test calls the factory, so memory-only tests do
    not need Redis.
    """
    started: list[RedisLimiter] = []

    async def make(**options: Any) -> RedisLimiter:
        limiter = RedisLimiter(REDIS_URL, prefix=redis_prefix, **options)
        started.append(limiter)
        try:
            await limiter.start()
        except LimiterUnavailable as exc:
            pytest.fail(f"Redis at {REDIS_URL} is required for these tests: {exc}")
        return limiter

    yield make
    for limiter in started:
        await limiter.close()
    if started:
        await delete_keys(redis_prefix)


async def delete_keys(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def harness(
    request: pytest.FixtureRequest, make_redis: RedisFactory
) -> AsyncIterator[Harness]:
    """A fresh, started limiter of each kind."""
    if request.param == "memory":
        clock = FakeClock()
        memory = MemoryLimiter(clock)
        await memory.start()
        yield Harness(limiter=memory, wait=clock.advance, slack=0.0)
        await memory.close()
    else:
        yield Harness(limiter=await make_redis(), wait=_real_sleep, slack=0.05)
