"""The shared ledger: PostgreSQL through an asyncpg pool, for many replicas.

Transactions run at READ COMMITTED. A reservation first takes a per-tenant
transaction-scoped advisory lock, so reservations of one tenant are
serialised across every replica, then reads spent, overrides and live
reservations in ONE statement (one snapshot: a concurrent settle is seen
either wholly or not at all), checks, inserts and commits. Settles need no
lock: they only add to counters with atomic upserts and shrink reservations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from gateway.ledger import postgres_audit as audit_ops
from gateway.ledger import postgres_ops as ops
from gateway.ledger.audit import AuditEntry, require_audit, require_budget_audit
from gateway.ledger.base import (
    BudgetExhausted,
    BudgetLimit,
    BudgetState,
    DenialRecord,
    IdempotencyClaim,
    LedgerError,
    LedgerUnavailable,
    Period,
    Reservation,
    ReservationLost,
    UsageGroup,
    UsageRecord,
)
from gateway.ledger.budget import (
    budget_states,
    check_reservation,
    lease_expiry,
    new_reservation_id,
    require_denial,
    require_limits,
    require_micros,
    require_page_limit,
    require_record,
    require_row_limit,
)
from gateway.ledger.idempotency import DONE, RUNNING
from gateway.ledger.schema import DENIAL_COLUMNS, DENIAL_FIELDS, USAGE_COLUMNS

# asyncpg raises TimeoutError when a command outlives command_timeout.
_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_CONNECT_TIMEOUT_S = 10.0
_COMMAND_TIMEOUT_S = 10.0
_CLAIM_ATTEMPTS = 3


class PostgresLedger:
    """`Ledger` over PostgreSQL; every replica opens its own pool."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        if self._pool is not None:
            raise LedgerError("ledger already started")
        try:
            # Bounded connects and commands: a hung server frees the connection
            # soon (callers are bounded separately by gateway.stores).
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=_CONNECT_TIMEOUT_S,
                command_timeout=_COMMAND_TIMEOUT_S,
            )
        except _STORE_ERRORS as exc:
            raise LedgerUnavailable(f"postgres ledger: cannot connect: {exc}") from exc
        self._pool = pool
        try:
            async with self._connection() as conn:
                await ops.migrate(conn)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def reserve(
        self,
        tenant: str,
        request_id: str,
        amount_micros: int,
        limits: Sequence[BudgetLimit],
        *,
        now: datetime,
        lease_s: float,
    ) -> Reservation:
        require_micros("amount_micros", amount_micros)
        require_limits(limits)
        expires_at = lease_expiry(now, lease_s)
        reservation = Reservation(
            new_reservation_id(), tenant, request_id, amount_micros, expires_at
        )
        async with self._transaction() as conn:
            await ops.lock_tenant(conn, tenant, durable=False)
            # What is no longer counted must no longer be settled against (the fence).
            await conn.execute(
                "DELETE FROM reservations WHERE tenant = $1 AND expires_at <= $2", tenant, now
            )
            snapshot = await ops.snapshot(conn, tenant, now)
            check_reservation(tenant, amount_micros, limits, snapshot, now)
            await ops.insert_reservation(conn, reservation, now)
        return reservation

    async def settle(
        self, reservation_id: str, record: UsageRecord, limits: Sequence[BudgetLimit] = ()
    ) -> None:
        require_record(record)
        require_limits(limits)
        async with self._transaction() as conn:
            if await ops.already_settled(conn, record):
                return  # this image was settled before: never charge twice
            # The row lock is the fence: a reserve that reclaims this lease
            # deletes the row, so it waits for this settle (or goes first).
            owner = await conn.fetchval(
                "SELECT tenant FROM reservations WHERE id = $1 FOR UPDATE", reservation_id
            )
            if owner is not None and owner != record.tenant:
                raise LedgerError(f"reservation {reservation_id} belongs to another tenant")
            if owner is None:
                await self._still_covered(conn, reservation_id, record, limits)
            if not await ops.insert_usage(conn, reservation_id, record):
                return
            await ops.add_spend(conn, record)
            await ops.shrink_reservation(conn, reservation_id, record.cost_micros)

    @staticmethod
    async def _still_covered(
        conn: Any, reservation_id: str, record: UsageRecord, limits: Sequence[BudgetLimit]
    ) -> None:
        """The lease was lost: charge only what the budget still covers, decided
        under the tenant's lock like a reservation."""
        await ops.lock_tenant(conn, record.tenant)
        snapshot = await ops.snapshot(conn, record.tenant, record.created_at)
        try:
            check_reservation(
                record.tenant, record.cost_micros, limits, snapshot, record.created_at
            )
        except BudgetExhausted as exc:
            raise ReservationLost(record.tenant, reservation_id, exc) from exc

    async def release(self, reservation_id: str) -> int:
        async with self._connection() as conn:
            released = await conn.fetchval(
                "DELETE FROM reservations WHERE id = $1 RETURNING remaining_micros", reservation_id
            )
        return int(released or 0)

    async def renew_many(
        self, reservation_ids: Sequence[str], *, now: datetime, lease_s: float
    ) -> set[str]:
        until = lease_expiry(now, lease_s)
        async with self._connection() as conn:
            rows = await conn.fetch(
                "UPDATE reservations SET expires_at = GREATEST(expires_at, $2)"
                " WHERE id = ANY($1::text[]) AND expires_at > $3 RETURNING id",
                list(reservation_ids),
                until,
                now,
            )
        return {row["id"] for row in rows}

    async def sweep(self, *, now: datetime) -> int:
        async with self._connection() as conn:
            status = await conn.execute("DELETE FROM reservations WHERE expires_at <= $1", now)
        return int(status.split()[-1])

    async def budgets(
        self, tenant: str, limits: Sequence[BudgetLimit], *, now: datetime
    ) -> list[BudgetState]:
        require_limits(limits)
        async with self._connection() as conn:
            snapshot = await ops.snapshot(conn, tenant, now)
        return budget_states(tenant, limits, snapshot, now)

    async def set_budget(self, tenant: str, period: Period, limit_micros: int) -> None:
        require_micros("limit_micros", limit_micros)
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO budget_overrides (tenant, period, limit_micros) VALUES ($1, $2, $3)"
                " ON CONFLICT (tenant, period) DO UPDATE SET limit_micros = EXCLUDED.limit_micros",
                tenant,
                Period(period).value,
                limit_micros,
            )

    async def top_up(
        self, tenant: str, period: Period, amount_micros: int, *, base_limit_micros: int
    ) -> int:
        require_micros("amount_micros", amount_micros)
        require_micros("base_limit_micros", base_limit_micros)
        async with self._connection() as conn:
            limit = await conn.fetchval(
                "INSERT INTO budget_overrides (tenant, period, limit_micros) VALUES ($1, $2, $3)"
                " ON CONFLICT (tenant, period) DO UPDATE"
                " SET limit_micros = budget_overrides.limit_micros + $4 RETURNING limit_micros",
                tenant,
                Period(period).value,
                base_limit_micros + amount_micros,
                amount_micros,
            )
        return int(limit)

    async def budget_overrides(self, tenant: str) -> dict[Period, int]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT period, limit_micros FROM budget_overrides WHERE tenant = $1", tenant
            )
        return {Period(row["period"]): row["limit_micros"] for row in rows}

    async def usage_summary(
        self, tenant: str, *, since: datetime, until: datetime
    ) -> list[UsageGroup]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT model, task, COUNT(*) AS images, SUM(cost_micros)::bigint AS cost"
                " FROM usage_records WHERE tenant = $1 AND created_at >= $2 AND created_at < $3"
                " GROUP BY model, task ORDER BY model, task",
                tenant,
                since,
                until,
            )
        return [UsageGroup(r["model"], r["task"], r["images"], r["cost"]) for r in rows]

    async def recent_usage(self, tenant: str | None, *, limit: int = 100) -> list[UsageRecord]:
        require_row_limit(limit)
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {USAGE_COLUMNS} FROM usage_records"
                " WHERE $1::text IS NULL OR tenant = $1"
                " ORDER BY created_at DESC, id DESC LIMIT $2",
                tenant,
                limit,
            )
        return [UsageRecord(**dict(row)) for row in rows]

    async def find_watermark(self, watermark_id: str) -> UsageRecord | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {USAGE_COLUMNS} FROM usage_records"
                " WHERE watermark_id = $1 AND watermark_id <> '' ORDER BY id LIMIT 1",
                watermark_id,
            )
        return None if row is None else UsageRecord(**dict(row))

    async def settled_total(self, tenant: str | None = None) -> int:
        async with self._connection() as conn:
            total = await conn.fetchval(
                "SELECT COALESCE(SUM(cost_micros), 0)::bigint FROM usage_records"
                " WHERE $1::text IS NULL OR tenant = $1",
                tenant,
            )
        return int(total)

    async def record_denial(self, record: DenialRecord) -> None:
        require_denial(record)
        async with self._connection() as conn:
            await conn.execute(
                f"INSERT INTO denials ({DENIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)",
                *(getattr(record, name) for name in DENIAL_FIELDS),
            )

    async def recent_denials(self, tenant: str | None, *, limit: int = 100) -> list[DenialRecord]:
        require_page_limit(limit)
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {DENIAL_COLUMNS} FROM denials"
                " WHERE $1::text IS NULL OR tenant = $1"
                " ORDER BY created_at DESC, id DESC LIMIT $2",
                tenant,
                limit,
            )
        return [DenialRecord(**dict(row)) for row in rows]

    async def claim_idempotency(
        self, tenant: str, key: str, request_hash: str, *, now: datetime, lease_s: float
    ) -> IdempotencyClaim:
        until = lease_expiry(now, lease_s)
        # Bounded: a row can vanish between the two statements only if its
        # owner abandoned it, and then the next insert wins or conflicts again.
        for _ in range(_CLAIM_ATTEMPTS):
            async with self._transaction() as conn:
                claim = await ops.claim(conn, tenant, key, request_hash, now, until)
            if claim is not None:
                return claim
        raise LedgerUnavailable(f"idempotency key {key!r}: claim kept racing with abandon")

    async def complete_idempotency(self, tenant: str, key: str, result: bytes) -> None:
        async with self._transaction() as conn:
            state = await conn.fetchval(
                "SELECT state FROM idempotency_keys WHERE tenant = $1 AND key = $2 FOR UPDATE",
                tenant,
                key,
            )
            if state is None:
                raise LedgerError(f"idempotency key {key!r} of tenant {tenant!r} is not claimed")
            if state == DONE:
                return  # the first result stands
            await conn.execute(
                "UPDATE idempotency_keys SET state = $3, result = $4, expires_at = NULL"
                " WHERE tenant = $1 AND key = $2",
                tenant,
                key,
                DONE,
                bytes(result),
            )

    async def abandon_idempotency(self, tenant: str, key: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2 AND state = $3",
                tenant,
                key,
                RUNNING,
            )

    # -- the admin audit log (audit.py) ---------------------------------------

    async def set_budget_audited(
        self,
        tenant: str,
        period: Period,
        limit_micros: int,
        *,
        base_limit_micros: int | None,
        audit: AuditEntry,
    ) -> AuditEntry:
        require_micros("limit_micros", limit_micros)
        require_budget_audit(audit, tenant, Period(period))
        async with self._transaction() as conn:
            return await audit_ops.set_budget_audited(
                conn, Period(period), limit_micros, base_limit_micros, audit
            )

    async def top_up_audited(
        self,
        tenant: str,
        period: Period,
        amount_micros: int,
        *,
        base_limit_micros: int,
        audit: AuditEntry,
    ) -> AuditEntry:
        require_micros("amount_micros", amount_micros)
        require_micros("base_limit_micros", base_limit_micros)
        require_budget_audit(audit, tenant, Period(period))
        async with self._transaction() as conn:
            return await audit_ops.top_up_audited(
                conn, Period(period), amount_micros, base_limit_micros, audit
            )

    async def record_audit(self, audit: AuditEntry) -> AuditEntry:
        require_audit(audit)
        async with self._connection() as conn:
            return await audit_ops.insert_audit(conn, audit)

    async def recent_audit(self, tenant: str | None, *, limit: int = 100) -> list[AuditEntry]:
        require_page_limit(limit)
        async with self._connection() as conn:
            return await audit_ops.recent_audit(conn, tenant, limit)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection; store failures become `LedgerUnavailable`."""
        if self._pool is None:
            raise LedgerError("ledger is not started")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _STORE_ERRORS as exc:
            raise LedgerUnavailable(f"postgres ledger: {exc}") from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        """One transaction, committed when the block exits without error."""
        async with self._connection() as conn, conn.transaction():
            yield conn
