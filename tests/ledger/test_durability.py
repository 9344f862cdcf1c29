"""Durability by write in PostgreSQL: a reservation's transaction commits
without waiting for its WAL flush (`synchronous_commit = off` for that
transaction only); a settle's waits, as every other write does.

Why that is safe is tested with the other fences: a reservation that a crash
took back looks to its settle exactly like one a sweep or a reclaim deleted,
and such a settle bills only what the budget still covers
(`test_reservations.py`: `test_settle_after_expiry_still_bills`,
`test_a_settle_against_a_reclaimed_reservation_is_refused_when_the_budget_is_gone`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gateway.ledger import PostgresLedger
from gateway.ledger import postgres_ops as ops

from .support import LEASE_S, PRICE, T0, day, usage


@pytest.fixture
async def pg(pg_database: str) -> AsyncIterator[PostgresLedger]:
    ledger = PostgresLedger(pg_database, min_size=1, max_size=2)
    await ledger.start()
    try:
        yield ledger
    finally:
        await ledger.close()


async def _setting(conn: Any) -> str:
    return str(await conn.fetchval("SHOW synchronous_commit"))


async def test_the_reservation_lock_relaxes_only_its_own_transaction(pg_database: str) -> None:
    conn = await asyncpg.connect(pg_database)
    try:
        async with conn.transaction():
            await ops.lock_tenant(conn, "acme", durable=False)
            assert await _setting(conn) == "off"
        assert await _setting(conn) == "on"  # SET LOCAL: gone with the transaction
        async with conn.transaction():
            await ops.lock_tenant(conn, "acme")
            assert await _setting(conn) == "on"
    finally:
        await conn.close()


async def test_a_reservation_commits_without_a_flush_and_a_settle_with_one(
    pg: PostgresLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read the setting inside the ledger's own transactions, just before each
    one's last write."""
    seen: dict[str, str] = {}
    insert_reservation, insert_usage = ops.insert_reservation, ops.insert_usage

    async def reserving(conn: Any, *args: Any) -> None:
        seen["reserve"] = await _setting(conn)
        await insert_reservation(conn, *args)

    async def settling(conn: Any, *args: Any) -> bool:
        seen["settle"] = await _setting(conn)
        return await insert_usage(conn, *args)

    monkeypatch.setattr(ops, "insert_reservation", reserving)
    monkeypatch.setattr(ops, "insert_usage", settling)
    tenant = "durability-acme"
    reservation = await pg.reserve(tenant, "r1", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
    await pg.settle(reservation.id, usage(tenant, "r1"))
    assert seen == {"reserve": "off", "settle": "on"}
    assert await pg.settled_total(tenant) == PRICE
