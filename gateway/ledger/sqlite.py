"""The embedded ledger: one SQLite file in WAL mode, for a single replica.

All work runs on one dedicated worker thread that owns the connection, so
the event loop never blocks on disk and the connection is never shared across
threads; the jobs waiting when it is free share one transaction and one
commit (group commit, `sqlite_group`). Several processes may open the same
file: they take turns writing by `flock` on a file beside it
(`sqlite_group.WriterTurn`), and `BEGIN IMMEDIATE` plus `busy_timeout`
serialise any other writer (see `sqlite_ops.connection`).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from gateway.ledger import sqlite_audit as audit_ops
from gateway.ledger import sqlite_ops as ops
from gateway.ledger.audit import AuditEntry, require_audit, require_budget_audit
from gateway.ledger.base import (
    BudgetLimit,
    BudgetState,
    DenialRecord,
    IdempotencyClaim,
    LedgerError,
    LedgerUnavailable,
    Period,
    Reservation,
    UsageGroup,
    UsageRecord,
)
from gateway.ledger.budget import (
    budget_states,
    lease_expiry,
    new_reservation_id,
    require_denial,
    require_limits,
    require_micros,
    require_page_limit,
    require_record,
    require_row_limit,
)
from gateway.ledger.sqlite_group import GroupCommit, WriterTurn

T = TypeVar("T")


class SqliteLedger:
    """`Ledger` over a SQLite file (created, with its folder, at `start`)."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self._path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._group: GroupCommit | None = None
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        if self._group is not None:
            raise LedgerError("ledger already started")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        turn = WriterTurn(self._path.with_name(self._path.name + ".writer-lock"))
        self._group = GroupCommit(lambda: self._conn, turn=turn)
        try:
            await self._submit(self._open, grouped=False)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        group = self._group
        if group is None:
            return
        try:
            await self._submit(self._close_connection, grouped=False)
        finally:
            self._group = None
            await asyncio.to_thread(group.stop)

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
        await self._run(ops.reserve, reservation, limits, now, durable=False)
        return reservation

    async def settle(
        self, reservation_id: str, record: UsageRecord, limits: Sequence[BudgetLimit] = ()
    ) -> None:
        require_record(record)
        require_limits(limits)
        await self._run(ops.settle, reservation_id, record, tuple(limits))

    async def release(self, reservation_id: str) -> int:
        return await self._run(ops.release, reservation_id, durable=False)

    async def renew_many(
        self, reservation_ids: Sequence[str], *, now: datetime, lease_s: float
    ) -> set[str]:
        until = lease_expiry(now, lease_s)
        ids = tuple(reservation_ids)
        return await self._run(ops.renew_many, ids, now, until, durable=False)

    async def sweep(self, *, now: datetime) -> int:
        return await self._run(ops.sweep, now, durable=False)

    async def budgets(
        self, tenant: str, limits: Sequence[BudgetLimit], *, now: datetime
    ) -> list[BudgetState]:
        require_limits(limits)
        snapshot = await self._run(ops.read_snapshot, tenant, now)
        return budget_states(tenant, limits, snapshot, now)

    async def set_budget(self, tenant: str, period: Period, limit_micros: int) -> None:
        require_micros("limit_micros", limit_micros)
        await self._run(ops.set_budget, tenant, Period(period), limit_micros)

    async def top_up(
        self, tenant: str, period: Period, amount_micros: int, *, base_limit_micros: int
    ) -> int:
        require_micros("amount_micros", amount_micros)
        require_micros("base_limit_micros", base_limit_micros)
        return await self._run(ops.top_up, tenant, Period(period), amount_micros, base_limit_micros)

    async def budget_overrides(self, tenant: str) -> dict[Period, int]:
        return await self._run(ops.budget_overrides, tenant)

    async def usage_summary(
        self, tenant: str, *, since: datetime, until: datetime
    ) -> list[UsageGroup]:
        return await self._run(ops.usage_summary, tenant, since, until)

    async def recent_usage(self, tenant: str | None, *, limit: int = 100) -> list[UsageRecord]:
        return await self._run(ops.recent_usage, tenant, require_row_limit(limit))

    async def find_watermark(self, watermark_id: str) -> UsageRecord | None:
        return await self._run(ops.find_watermark, watermark_id)

    async def settled_total(self, tenant: str | None = None) -> int:
        return await self._run(ops.settled_total, tenant)

    async def record_denial(self, record: DenialRecord) -> None:
        require_denial(record)
        await self._run(ops.record_denial, record)

    async def recent_denials(self, tenant: str | None, *, limit: int = 100) -> list[DenialRecord]:
        return await self._run(ops.recent_denials, tenant, require_page_limit(limit))

    async def claim_idempotency(
        self, tenant: str, key: str, request_hash: str, *, now: datetime, lease_s: float
    ) -> IdempotencyClaim:
        until = lease_expiry(now, lease_s)
        return await self._run(ops.claim_idempotency, tenant, key, request_hash, now, until)

    async def complete_idempotency(self, tenant: str, key: str, result: bytes) -> None:
        await self._run(ops.complete_idempotency, tenant, key, bytes(result))

    async def abandon_idempotency(self, tenant: str, key: str) -> None:
        await self._run(ops.abandon_idempotency, tenant, key)

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
        return await self._run(
            audit_ops.set_budget_audited, Period(period), limit_micros, base_limit_micros, audit
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
        return await self._run(
            audit_ops.top_up_audited, Period(period), amount_micros, base_limit_micros, audit
        )

    async def record_audit(self, audit: AuditEntry) -> AuditEntry:
        require_audit(audit)
        return await self._run(audit_ops.record_audit, audit)

    async def recent_audit(self, tenant: str | None, *, limit: int = 100) -> list[AuditEntry]:
        return await self._run(audit_ops.recent_audit, tenant, require_page_limit(limit))

    def progress(self) -> float | None:
        """When the writer thread last finished work (time.monotonic()); None
        before start. The store guard reads it to tell a queue from a hang."""
        return self._group.last_progress if self._group is not None else None

    # -- the worker thread -------------------------------------------------

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = ops.connect(self._path, self._busy_timeout_s)
        try:
            ops.migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _run(self, op: Callable[..., T], *args: Any, durable: bool = True) -> T:
        """Run `op(connection, *args)` on the worker thread. Only reservations,
        releases, renewals and sweeps pass `durable=False`: they need not survive
        a power cut (see `sqlite_group`); every settle and every other write does."""
        job = functools.partial(self._with_connection, op, *args)
        return await self._submit(job, durable=durable)

    def _with_connection(self, op: Callable[..., T], *args: Any) -> T:
        if self._conn is None:
            raise LedgerError("ledger is not started")
        return op(self._conn, *args)

    async def _submit(
        self, job: Callable[[], T], *, grouped: bool = True, durable: bool = True
    ) -> T:
        """Run `job` on the worker thread: with `grouped`, inside the next group
        commit (`sqlite_group`), answered once that commit has returned."""
        if self._group is None:
            raise LedgerError("ledger is not started")
        try:
            result: T = await self._group.submit(job, grouped=grouped, durable=durable)
            return result
        except (sqlite3.Error, OSError) as exc:
            raise LedgerUnavailable(f"sqlite ledger {self._path}: {exc}") from exc
