"""A real PostgreSQL that stops answering, behind a proxy the test controls.

`PostgresLedger` -> `HangingProxy` (127.0.0.1:<random>) -> PostgreSQL at
127.0.0.1:5432 (`TEST_POSTGRES_DSN`, as for the ledger tests; an unreachable
server FAILS this test). With the proxy hung, a guarded settle and reserve
fail within the timeout, health goes down and calls fail fast; resumed, the
probe brings the ledger back and reserve works again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import pytest

from gateway.ledger import BudgetLimit, LedgerUnavailable, Period, PostgresLedger, UsageRecord
from gateway.limits import MemoryLimiter
from gateway.stores import LEDGER, guard_stores
from tests.ledger.pg import ADMIN_DSN, create_database, drop_database, new_database_name

from .fakes import Flips, eventually
from .proxy import HangingProxy

TIMEOUT_S = 0.3
PROBE_S = 0.1
LIMITS = [BudgetLimit(Period.DAY, 1_000_000)]


def record(request_id: str, now: datetime) -> UsageRecord:
    return UsageRecord(
        tenant="acme",
        request_id=request_id,
        image_index=0,
        model="amazon.titan-image-generator-v2:0",
        task="TEXT_IMAGE",
        width=1024,
        height=1024,
        quality="standard",
        cost_micros=40_000,
        image_sha256=hashlib.sha256(request_id.encode()).hexdigest(),
        created_at=now,
    )


@pytest.fixture
async def proxied_dsn() -> AsyncIterator[tuple[str, HangingProxy]]:
    """A fresh database reached through a proxy; both gone afterwards."""
    name = new_database_name()
    try:
        await create_database(name)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for this test ({ADMIN_DSN}): {exc}")
    server = urlsplit(ADMIN_DSN)
    proxy = HangingProxy(server.hostname or "127.0.0.1", server.port or 5432)
    await proxy.start()
    user = f"{server.username}@" if server.username else ""
    if server.password:
        user = f"{server.username}:{server.password}@"
    try:
        yield f"postgresql://{user}127.0.0.1:{proxy.port}/{name}", proxy
    finally:
        proxy.resume()
        await proxy.close()
        await drop_database(name)


async def test_a_hung_postgres_fails_fast_and_comes_back(
    proxied_dsn: tuple[str, HangingProxy],
) -> None:
    dsn, proxy = proxied_dsn
    store = PostgresLedger(dsn, min_size=1, max_size=4)
    await store.start()
    flips = Flips()
    ledger, _, health = guard_stores(
        store,
        MemoryLimiter(),
        timeout_s=TIMEOUT_S,
        probe_interval_s=PROBE_S,
        on_change=flips,
    )
    watcher = asyncio.create_task(health.watch())
    try:
        now = datetime.now(UTC)
        held = await ledger.reserve("acme", "r1", 80_000, LIMITS, now=now, lease_s=60.0)
        assert health.all_up

        proxy.hang()
        started = time.monotonic()
        with pytest.raises(LedgerUnavailable, match="may still have committed"):
            await ledger.settle(held.id, record("r1", now), LIMITS)
        assert time.monotonic() - started < TIMEOUT_S + 0.5
        assert not health.is_up(LEDGER)
        assert flips.reports == [False]

        started = time.monotonic()
        with pytest.raises(LedgerUnavailable, match="ledger is down"):
            await ledger.reserve("acme", "r2", 40_000, LIMITS, now=now, lease_s=60.0)
        assert time.monotonic() - started < 0.05  # fail fast: the store is not asked

        # Probes keep timing out while PostgreSQL hangs.
        await asyncio.sleep(3 * PROBE_S + TIMEOUT_S)
        assert not health.is_up(LEDGER)
        assert flips.reports == [False]

        proxy.resume()
        await eventually(lambda: len(flips.reports) == 2, within_s=10.0)
        assert health.is_up(LEDGER)
        assert flips.reports == [False, True]
        again = await ledger.reserve("acme", "r2", 40_000, LIMITS, now=now, lease_s=60.0)
        assert again.amount_micros == 40_000

        # The timed-out settle may or may not have committed; it was not
        # retried. Settling the same image again charges it exactly once.
        await ledger.settle(held.id, record("r1", now), LIMITS)
        assert await ledger.settled_total("acme") == 40_000
    finally:
        proxy.resume()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        assert await health.drain(10.0) == 0
        await asyncio.wait_for(store.close(), 10.0)


async def test_a_hung_postgres_during_reserve(proxied_dsn: tuple[str, HangingProxy]) -> None:
    """The first call to meet the outage is a reserve: nothing is held afterwards."""
    dsn, proxy = proxied_dsn
    store = PostgresLedger(dsn, min_size=1, max_size=4)
    await store.start()
    flips = Flips()
    ledger, _, health = guard_stores(
        store, MemoryLimiter(), timeout_s=TIMEOUT_S, probe_interval_s=PROBE_S, on_change=flips
    )
    watcher = asyncio.create_task(health.watch())
    try:
        now = datetime.now(UTC)
        proxy.hang()
        started = time.monotonic()
        with pytest.raises(LedgerUnavailable, match=r"did not answer within 0\.3s \(reserve"):
            await ledger.reserve("acme", "r1", 40_000, LIMITS, now=now, lease_s=60.0)
        assert time.monotonic() - started < TIMEOUT_S + 0.5
        assert flips.reports == [False]

        proxy.resume()
        await eventually(lambda: len(flips.reports) == 2, within_s=10.0)
        assert health.all_up
        assert flips.reports == [False, True]
        (state,) = await ledger.budgets("acme", LIMITS, now=now)
        # The cancelled reserve either rolled back or holds its lease: never more.
        assert state.reserved_micros in (0, 40_000)
        assert state.spent_micros == 0
        held = await ledger.reserve("acme", "r2", 40_000, LIMITS, now=now, lease_s=60.0)
        assert held.amount_micros == 40_000
    finally:
        proxy.resume()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        assert await health.drain(10.0) == 0
        await asyncio.wait_for(store.close(), 10.0)
