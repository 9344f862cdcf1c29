"""Fixtures that run one contract suite against both ledger stores.

SQLite lives in `tmp_path`. PostgreSQL gets a fresh database per test session
(`ledger_test_<random>`, created through the `postgres` database and dropped
at the end), with the ledger tables emptied before each test. Point
`TEST_POSTGRES_DSN` at another server's `postgres` database if needed; an
unreachable server FAILS the PostgreSQL tests: CI always starts one.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from gateway.ledger import Ledger, PostgresLedger, SqliteLedger

from .pg import ADMIN_DSN, create_database, drop_database, new_database_name, run_in_thread

LEDGER_TABLES = (
    "budget_overrides",
    "spend_counters",
    "reservations",
    "usage_records",
    "idempotency_keys",
    "denials",
)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A DSN for a database created for this session (dropped afterwards)."""
    name = new_database_name()
    try:
        dsn = run_in_thread(create_database(name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for the ledger tests ({ADMIN_DSN}): {exc}")
    try:
        yield dsn
    finally:
        run_in_thread(drop_database(name))


@dataclass
class Store:
    """One backing store; `make()` opens another ledger on it (another replica)."""

    kind: str
    build: Callable[[], Ledger]
    dsn: str | None = None
    path: Path | None = None
    opened: list[Ledger] = field(default_factory=list)

    async def make(self) -> Ledger:
        ledger = self.build()
        await ledger.start()
        self.opened.append(ledger)
        return ledger

    async def make_many(self, count: int) -> list[Ledger]:
        """`count` ledgers started at the same time (racing migrations)."""
        ledgers = [self.build() for _ in range(count)]
        self.opened.extend(ledgers)
        await asyncio.gather(*(ledger.start() for ledger in ledgers))
        return ledgers

    async def schema_versions(self) -> list[int]:
        """The versions recorded in `schema_migrations`, ascending."""
        query = "SELECT version FROM schema_migrations ORDER BY version"
        if self.dsn is None:
            assert self.path is not None
            with closing(sqlite3.connect(self.path)) as db:
                return [v for (v,) in db.execute(query)]
        conn = await asyncpg.connect(self.dsn)
        try:
            return [r["version"] for r in await conn.fetch(query)]
        finally:
            await conn.close()

    async def truncate(self) -> None:
        if self.dsn is None:
            return  # a fresh SQLite file per test
        conn = await asyncpg.connect(self.dsn)
        try:
            # DELETE, not TRUNCATE: as empty, and much faster on tiny tables.
            for table in LEDGER_TABLES:
                await conn.execute(f"DELETE FROM {table}")
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        path = tmp_path / "ledger" / "ledger.db"
        return Store("sqlite", lambda: SqliteLedger(path), path=path)
    dsn: str = request.getfixturevalue("pg_database")
    return Store("postgres", lambda: PostgresLedger(dsn, min_size=1, max_size=5), dsn)


@pytest.fixture
async def store(store_spec: Store) -> AsyncIterator[Store]:
    """The store, emptied; every ledger opened on it is closed afterwards."""
    try:
        yield store_spec
    finally:
        await asyncio.gather(*(ledger.close() for ledger in store_spec.opened))


@pytest.fixture
async def ledger(store: Store) -> Ledger:
    """A started ledger on an empty store."""
    first = await store.make()
    await store.truncate()
    return first
