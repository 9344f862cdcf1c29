"""The PostgreSQL ledger's SQL and multi-statement steps (see `postgres.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.ledger.base import (
    IdempotencyClaim,
    IdempotencyState,
    Period,
    Reservation,
    UsageRecord,
)
from gateway.ledger.budget import TenantSnapshot, spend_windows, window_starts
from gateway.ledger.idempotency import RUNNING, KeyRow, decide_claim
from gateway.ledger.schema import USAGE_COLUMNS, USAGE_FIELDS, load_migrations

# Advisory lock keys. The one-bigint and two-int4 key spaces never overlap.
MIGRATION_LOCK = 0x4C45_4447_4552_0001
TENANT_LOCK_NAMESPACE = 0x4C47

SNAPSHOT_SQL = """
SELECT p.period,
       COALESCE(c.spent_micros, 0) AS spent,
       o.limit_micros AS override,
       (SELECT COALESCE(SUM(r.remaining_micros), 0) FROM reservations r
         WHERE r.tenant = $1 AND r.expires_at > $2)::bigint AS reserved
  FROM unnest($3::text[], $4::timestamptz[]) AS p(period, window_start)
  LEFT JOIN spend_counters c
    ON c.tenant = $1 AND c.period = p.period AND c.window_start = p.window_start
  LEFT JOIN budget_overrides o ON o.tenant = $1 AND o.period = p.period
"""

ADD_SPEND_SQL = """
INSERT INTO spend_counters (tenant, period, window_start, spent_micros)
SELECT $1::text, p.period, p.window_start, $4::bigint
  FROM unnest($2::text[], $3::timestamptz[]) AS p(period, window_start)
    ON CONFLICT (tenant, period, window_start)
    DO UPDATE SET spent_micros = spend_counters.spent_micros + EXCLUDED.spent_micros
"""


async def migrate(conn: Any) -> None:
    """Apply pending migrations under a session advisory lock (replicas start together)."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in load_migrations("postgres"):
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def snapshot(conn: Any, tenant: str, now: datetime) -> TenantSnapshot:
    starts = window_starts(now)
    rows = await conn.fetch(
        SNAPSHOT_SQL, tenant, now, [p.value for p in starts], list(starts.values())
    )
    spent = {Period(r["period"]): r["spent"] for r in rows}
    overrides = {Period(r["period"]): r["override"] for r in rows if r["override"] is not None}
    return TenantSnapshot(spent, overrides, rows[0]["reserved"])


async def lock_tenant(conn: Any, tenant: str, *, durable: bool = True) -> None:
    """Serialise this tenant's reservations across replicas until the transaction ends.

    `durable=False` (a reservation) also lets this transaction commit without
    waiting for its WAL flush (`synchronous_commit = off`, this transaction
    only, in the same round trip). A reservation lost to a server crash is
    harmless by construction: its settle finds no row and bills only what the
    budget still covers, under this same lock (`PostgresLedger.settle`), and a
    settle's own commit is flushed, with every WAL record before it."""
    if durable:
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", TENANT_LOCK_NAMESPACE, tenant
        )
        return
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2)),"
        " set_config('synchronous_commit', 'off', true)",
        TENANT_LOCK_NAMESPACE,
        tenant,
    )


async def insert_reservation(conn: Any, reservation: Reservation, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO reservations (id, tenant, request_id, amount_micros,"
        " remaining_micros, created_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5, $6)",
        reservation.id,
        reservation.tenant,
        reservation.request_id,
        reservation.amount_micros,
        now,
        reservation.expires_at,
    )


async def add_spend(conn: Any, record: UsageRecord) -> None:
    """Add the record's cost to its day, month and total counters."""
    windows = spend_windows(record)
    periods = [period.value for period, _ in windows]
    starts = [start for _, start in windows]
    await conn.execute(ADD_SPEND_SQL, record.tenant, periods, starts, record.cost_micros)


async def shrink_reservation(conn: Any, reservation_id: str, cost_micros: int) -> None:
    await conn.execute(
        "UPDATE reservations SET remaining_micros = GREATEST(0, remaining_micros - $2)"
        " WHERE id = $1",
        reservation_id,
        cost_micros,
    )


async def already_settled(conn: Any, record: UsageRecord) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM usage_records WHERE tenant = $1 AND request_id = $2 AND image_index = $3",
        record.tenant,
        record.request_id,
        record.image_index,
    )
    return found is not None


_PLACEHOLDERS = ", ".join(f"${n}" for n in range(1, len(USAGE_FIELDS) + 2))


async def insert_usage(conn: Any, reservation_id: str, record: UsageRecord) -> bool:
    """Insert the usage row; False if this image was already recorded."""
    inserted = await conn.fetchval(
        f"INSERT INTO usage_records ({USAGE_COLUMNS}, reservation_id)"
        f" VALUES ({_PLACEHOLDERS})"
        " ON CONFLICT (tenant, request_id, image_index) DO NOTHING RETURNING id",
        *(getattr(record, name) for name in USAGE_FIELDS),
        reservation_id,
    )
    return inserted is not None


async def claim(
    conn: Any, tenant: str, key: str, request_hash: str, now: datetime, until: datetime
) -> IdempotencyClaim | None:
    """One claim attempt; None if the row vanished between insert and lock."""
    inserted = await conn.fetchval(
        "INSERT INTO idempotency_keys (tenant, key, request_hash, state, expires_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, key) DO NOTHING RETURNING 1",
        tenant,
        key,
        request_hash,
        RUNNING,
        until,
    )
    if inserted is not None:
        return IdempotencyClaim(IdempotencyState.NEW)
    row = await conn.fetchrow(
        "SELECT request_hash, state, result, expires_at FROM idempotency_keys"
        " WHERE tenant = $1 AND key = $2 FOR UPDATE",
        tenant,
        key,
    )
    if row is None:
        return None
    claim = decide_claim(KeyRow(**dict(row)), request_hash, now)
    if claim.state is IdempotencyState.NEW:  # the previous owner's lease ran out
        await conn.execute(
            "UPDATE idempotency_keys SET expires_at = $3 WHERE tenant = $1 AND key = $2",
            tenant,
            key,
            until,
        )
    return claim
