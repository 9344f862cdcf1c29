"""Migrations: applied once, safely when replicas start together; data survives restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.ledger import (
    BudgetExhausted,
    DenialRecord,
    Ledger,
    PostgresLedger,
    Reservation,
    SqliteLedger,
    postgres_ops,
    sqlite_ops,
)
from gateway.ledger.schema import Migration, load_migrations
from gateway.ledger.sqlite_ops import connection as sqlite_connection

from .conftest import Store
from .pg import create_database, drop_database, new_database_name
from .support import PRICE, T0, day, usage

VERSIONS = [m.version for m in load_migrations("sqlite")]


def test_both_dialects_ship_the_same_migration_versions() -> None:
    assert [m.version for m in load_migrations("postgres")] == VERSIONS
    assert VERSIONS[:2] == [1, 2]
    assert list(range(1, len(VERSIONS) + 1)) == VERSIONS  # no gaps


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


DENIED = DenialRecord("acme", "r2", "POLICY_DENIED", "no-hd", "hd is not allowed", T0)


@pytest.mark.usefixtures("ledger")  # an emptied store
async def test_every_migration_is_recorded_and_starting_again_is_a_no_op(store: Store) -> None:
    first = await store.make()
    await first.record_denial(DENIED)
    applied = await store.schema_versions()
    await first.close()

    again = await store.make()

    assert applied == VERSIONS
    assert applied[:2] == [1, 2]
    assert await store.schema_versions() == applied
    assert await again.recent_denials("acme") == [DENIED]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_version_1_ledger_upgrades_in_place(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    def only_version_1(dialect: str) -> list[Migration]:
        return load_migrations(dialect)[:1]

    name = None
    if kind == "sqlite":
        path = tmp_path / "old" / "ledger.db"
        store = Store(kind, lambda: SqliteLedger(path), path=path)
    else:
        request.getfixturevalue("pg_database")  # fails clearly without a server
        name = new_database_name()
        dsn = await create_database(name)
        store = Store(kind, lambda: PostgresLedger(dsn, max_size=2), dsn)
    ops: Any = sqlite_connection if kind == "sqlite" else postgres_ops
    try:
        monkeypatch.setattr(ops, "load_migrations", only_version_1)
        old = await store.make()
        # A reservation taken under version 1 (today's code writes usage rows
        # with columns version 1 lacks, so the settle happens after the upgrade;
        # and today's SQLite reserve reads 007's running total, so there the
        # row is written as version 1's code wrote it).
        reservation = await _reserve_under_version_1(old, kind)
        await old.close()
        assert await store.schema_versions() == [1]
        monkeypatch.undo()

        upgraded = await store.make()

        assert await store.schema_versions() == VERSIONS
        # The old reservation still holds its budget after the upgrade.
        with pytest.raises(BudgetExhausted):
            await upgraded.reserve("acme", "r2", 10 * PRICE, [day(10 * PRICE)], now=T0, lease_s=60)
        await upgraded.settle(reservation.id, usage("acme", "r1", 0))
        (state,) = await upgraded.budgets("acme", [day(10 * PRICE)], now=T0)
        assert (state.spent_micros, state.reserved_micros) == (PRICE, 0)
        assert [r.route_arm for r in await upgraded.recent_usage("acme")] == [""]
        await upgraded.record_denial(DENIED)
        assert await upgraded.recent_denials(None) == [DENIED]
    finally:
        await asyncio.gather(*(ledger.close() for ledger in store.opened))
        if name is not None:
            await drop_database(name)


async def _reserve_under_version_1(ledger: Ledger, kind: str) -> Reservation:
    if kind == "postgres":
        return await ledger.reserve("acme", "r1", PRICE, [day(10 * PRICE)], now=T0, lease_s=60)
    assert isinstance(ledger, SqliteLedger)
    reservation = Reservation("v1-reservation", "acme", "r1", PRICE, T0 + timedelta(seconds=60))

    def insert(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO reservations (id, tenant, request_id, amount_micros,"
            " remaining_micros, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (reservation.id, "acme", "r1", PRICE, PRICE, sqlite_ops.to_us(T0),
             sqlite_ops.to_us(reservation.expires_at)),
        )  # fmt: skip

    await ledger._run(insert)
    return reservation
