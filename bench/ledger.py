"""Money-path and rate-limit cost: what each image pays the ledger and each
request pays the limiter, next to one bare gRPC unary call in the same run.

* Ledger (SQLite file in a temp dir, and PostgreSQL in a throw-away database
  `bench_ledger_<random>`): reserve 1 image against generous DAY and MONTH
  limits, settle one `UsageRecord`, release; sequential, in µs per image.
  PostgreSQL also runs 16 concurrent tasks (distinct request ids), once all on
  one tenant (serialised by its per-tenant advisory lock) and once on 16
  tenants, in images per second. The ledger comes from `open_ledger(url)`, as
  the server builds it (a pool of at most 10 connections).
* Limiter: one `acquire` of three RateRequests (requests per minute, images
  per minute, images per day), always admitted, in Redis (random key prefix,
  deleted at the end) and in memory.

Every store is on 127.0.0.1. Each cell runs about `seconds / 4`, bounded in
iterations too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from bench.common import bare_unary_us
from gateway.ledger import BudgetLimit, Ledger, Period, UsageRecord, open_ledger
from gateway.limits import Limiter, RateLimit, RateRequest, open_limiter

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
PRICE = 40_000  # micro-USD: 0.04 USD, one standard 1024x1024 image
LIMITS = (BudgetLimit(Period.DAY, 10**15), BudgetLimit(Period.MONTH, 10**16))
LEASE_S = 60.0
CONCURRENCY = 16
MAX_IMAGES = 20_000
MAX_CHECKS = 200_000
WARMUP = 20
RUN_ID = secrets.token_hex(4)


@dataclass(frozen=True)
class Row:
    what: str
    ops: int
    seconds: float

    @property
    def us_per_op(self) -> float:
        """Wall µs per op (for a concurrent cell: wall time / ops, amortised)."""
        return self.seconds / self.ops * 1e6

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


def record(tenant: str, request_id: str) -> UsageRecord:
    return UsageRecord(
        tenant=tenant,
        request_id=request_id,
        image_index=0,
        model="amazon.titan-image-generator-v2:0",
        task="TEXT_IMAGE",
        width=1024,
        height=1024,
        quality="standard",
        cost_micros=PRICE,
        image_sha256=hashlib.sha256(request_id.encode()).hexdigest(),
        created_at=datetime.now(UTC),
    )


async def one_image(ledger: Ledger, tenant: str, request_id: str) -> None:
    """The money path of one delivered image: reserve → settle → release."""
    reservation = await ledger.reserve(
        tenant, request_id, PRICE, LIMITS, now=datetime.now(UTC), lease_s=LEASE_S
    )
    await ledger.settle(reservation.id, record(tenant, request_id))
    await ledger.release(reservation.id)


async def timed(
    op: Callable[[int], Awaitable[object]], seconds: float, limit: int, warmup: int = WARMUP
) -> tuple[int, float]:
    """Run `op(i)` sequentially for `seconds` (at most `limit` times): (ops, elapsed)."""
    for i in range(warmup):
        await op(-1 - i)
    ops, start = 0, time.perf_counter()
    while ops < limit and time.perf_counter() - start < seconds:
        await op(ops)
        ops += 1
    return ops, time.perf_counter() - start


async def ledger_sequential(ledger: Ledger, name: str, seconds: float) -> Row:
    tenant = f"seq-{RUN_ID}"

    async def op(i: int) -> None:
        await one_image(ledger, tenant, f"{name}-seq-{i}")

    ops, elapsed = await timed(op, seconds, MAX_IMAGES)
    return Row(f"{name} ledger: reserve→settle→release, 1 image", ops, elapsed)


async def ledger_concurrent(ledger: Ledger, name: str, seconds: float, *, one_tenant: bool) -> Row:
    """CONCURRENCY tasks loop the money path; images per second over all of them."""
    label = "1 tenant" if one_tenant else f"{CONCURRENCY} tenants"
    kind = "one" if one_tenant else "many"
    per_task = MAX_IMAGES // CONCURRENCY
    for i in range(CONCURRENCY):  # warm the pool and the tenants' rows
        await one_image(ledger, f"c{kind}-{RUN_ID}-{0 if one_tenant else i}", f"warm-{kind}-{i}")
    deadline = time.perf_counter() + seconds

    async def worker(task: int) -> int:
        tenant = f"c{kind}-{RUN_ID}-{0 if one_tenant else task}"
        done = 0
        while done < per_task and time.perf_counter() < deadline:
            await one_image(ledger, tenant, f"{name}-{kind}-{task}-{done}")
            done += 1
        return done

    start = time.perf_counter()
    counts = await asyncio.gather(*(worker(t) for t in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    return Row(f"{name} ledger: {CONCURRENCY} concurrent, {label}", sum(counts), elapsed)


async def sqlite_rows(seconds: float) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as folder:
        ledger = open_ledger(f"sqlite:///{Path(folder, 'ledger.db')}")
        await ledger.start()
        try:
            return [await ledger_sequential(ledger, "SQLite", seconds)]
        finally:
            await ledger.close()


async def postgres_rows(seconds: float) -> list[Row]:
    name = f"bench_ledger_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        ledger = open_ledger(PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name)
        await ledger.start()
        try:
            return [
                await ledger_sequential(ledger, "PostgreSQL", seconds),
                await ledger_concurrent(ledger, "PostgreSQL", seconds, one_tenant=True),
                await ledger_concurrent(ledger, "PostgreSQL", seconds, one_tenant=False),
            ]
        finally:
            await ledger.close()
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def rate_requests(tenant: str) -> list[RateRequest]:
    """Generous quotas, so every check is admitted (the common path)."""
    return [
        RateRequest(f"rpm:{tenant}", RateLimit(10**9, 60.0), 1, "requests_per_minute"),
        RateRequest(f"ipm:{tenant}", RateLimit(10**9, 60.0), 1, "images_per_minute"),
        RateRequest(f"ipd:{tenant}", RateLimit(10**9, 86_400.0), 1, "images_per_day"),
    ]


async def limiter_row(limiter: Limiter, name: str, seconds: float) -> Row:
    requests = rate_requests(f"bench-{RUN_ID}")

    async def op(_: int) -> None:
        decision = await limiter.acquire(requests)
        if not decision.allowed:
            raise RuntimeError(f"{name} limiter refused a generous quota: {decision}")

    ops, elapsed = await timed(op, seconds, MAX_CHECKS, warmup=200)
    return Row(f"{name} limiter: acquire rpm+ipm+ipd", ops, elapsed)


async def limiter_rows(seconds: float) -> list[Row]:
    prefix = f"bench:{RUN_ID}-{os.getpid()}:"
    rows = []
    redis_limiter = open_limiter(REDIS_URL, prefix=prefix)
    try:
        await redis_limiter.start()
        rows.append(await limiter_row(redis_limiter, "Redis", seconds))
    finally:
        await redis_limiter.close()
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
    memory_limiter = open_limiter("memory")
    await memory_limiter.start()
    try:
        rows.append(await limiter_row(memory_limiter, "in-memory", seconds))
    finally:
        await memory_limiter.close()
    return rows


async def measure(seconds: float) -> tuple[float, list[Row]]:
    cell = seconds / 4
    bare = await bare_unary_us(2000)
    rows = await sqlite_rows(cell)
    rows += await postgres_rows(cell)
    rows += await limiter_rows(cell)
    return bare, rows


def run_bench(seconds: float) -> None:
    bare, rows = asyncio.run(measure(seconds))
    width = max(len(row.what) for row in rows)
    width = max(width, len("bare grpc.aio unary call (health)"))
    print(f"| {'what':<{width}} | µs per op | ops/s     | vs one bare gRPC call |")
    print(f"|{'-' * (width + 2)}|-----------|-----------|-----------------------|")
    base = "bare grpc.aio unary call (health)"
    print(f"| {base:<{width}} | {bare:>9.1f} | {1e6 / bare:>9.0f} | {1:>20.2f}x |")
    for row in rows:
        print(
            f"| {row.what:<{width}} | {row.us_per_op:>9.1f} | {row.rate:>9.0f} |"
            f" {row.us_per_op / bare:>20.2f}x |"
        )
    print(
        f"\nConcurrent rows: µs per op is wall time / images over {CONCURRENCY} tasks"
        " (amortised, not latency); ops/s is images per second."
    )
