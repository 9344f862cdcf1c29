"""Migrations: applied once, safely when replicas start together; data survives restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from gateway.ledger import PostgresLedger, SqliteLedger
from gateway.ledger.schema import load_migrations

from .conftest import Store
from .pg import create_database, drop_database, new_database_name
from .support import PRICE, T0, day, usage

VERSIONS = [m.version for m in load_migrations("sqlite")]


def test_both_dialects_ship_the_same_migration_versions() -> None:
    assert [m.version for m in load_migrations("postgres")] == VERSIONS
    assert VERSIONS[0] == 1


async def test_replicas_starting_together_on_sqlite_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ledger.db"
    ledgers = [SqliteLedger(path) for _ in range(3)]
    try:
        await asyncio.gather(*(ledger.start() for ledger in ledgers))
    finally:
        await asyncio.gather(*(ledger.close() for ledger in ledgers))

    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert [v for (v,) in rows] == VERSIONS
    assert mode == "wal"


async def test_replicas_starting_together_on_postgres_migrate_once(pg_database: str) -> None:
    name = new_database_name()
    dsn = await create_database(name)
    ledgers = [PostgresLedger(dsn, max_size=2) for _ in range(3)]
    try:
        await asyncio.gather(*(ledger.start() for ledger in ledgers))
        await asyncio.gather(*(ledger.close() for ledger in ledgers))
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        finally:
            await conn.close()
    finally:
        await asyncio.gather(*(ledger.close() for ledger in ledgers))
        await drop_database(name)
    assert [r["version"] for r in rows] == VERSIONS


@pytest.mark.usefixtures("ledger")  # an emptied store
async def test_a_restarted_ledger_keeps_its_data(store: Store) -> None:
    first = await store.make()
    reservation = await first.reserve(
        "acme", "r1", 2 * PRICE, [day(10 * PRICE)], now=T0, lease_s=60
    )
    await first.settle(reservation.id, usage("acme", "r1", 0))
    await first.close()

    again = await store.make()

    (state,) = await again.budgets("acme", [day(10 * PRICE)], now=T0)
    assert (state.spent_micros, state.reserved_micros) == (PRICE, PRICE)
    assert await again.settled_total() == PRICE
