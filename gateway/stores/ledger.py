"""`TimedLedger`: any `Ledger`, every call bounded in time and reported to `StoreHealth`.

A call that does not answer within `timeout_s` raises `LedgerUnavailable`
("ledger did not answer within 2s (settle; …)"), which the RPC layer maps to
UNAVAILABLE; while the ledger is down calls raise it at once.

Money: a write that times out (settle above all) may still have committed.
It is never retried here and the error is never swallowed: the caller must
treat the image as not confirmed (not send it) and let the usage record,
unique per (tenant, request, index), be the truth if it did commit.

`start()` is delegated as is (connecting and migrating may take longer than
one call and a store that cannot start fails the boot); `close()` is bounded
by the same timeout but never fails fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.ledger import (
    AuditEntry,
    BudgetLimit,
    BudgetState,
    DenialRecord,
    IdempotencyClaim,
    Ledger,
    LedgerUnavailable,
    Period,
    Reservation,
    UsageGroup,
    UsageRecord,
)
from gateway.stores.health import StoreHealth, close_within

LEDGER = "ledger"
PROBE_TENANT = "__probe__"


class TimedLedger:
    """A `Ledger` that delegates to `ledger`, each call within `timeout_s`."""

    def __init__(
        self, ledger: Ledger, health: StoreHealth, timeout_s: float, *, name: str = LEDGER
    ) -> None:
        self._ledger = ledger
        self._health = health
        self._name = name
        self._timeout_s = timeout_s
        health.add(
            name,
            timeout_s=timeout_s,
            probe=self._probe,
            unavailable=LedgerUnavailable,
            # Only a ledger that defines it (SqliteLedger), not any proxy's __getattr__.
            progress=ledger.progress if hasattr(type(ledger), "progress") else None,  # type: ignore[attr-defined]
        )

    @property
    def inner(self) -> Ledger:
        """The ledger this one delegates to."""
        return self._ledger

    async def _probe(self) -> None:
        """A cheap read: a tenant nobody has, no limits (one snapshot query)."""
        await self._ledger.budgets(PROBE_TENANT, [], now=datetime.now(UTC))

    async def start(self) -> None:
        await self._ledger.start()

    async def close(self) -> None:
        # Not through `call`: closing must happen even while the store is down.
        await close_within(self._ledger.close, self._name, self._timeout_s, LedgerUnavailable)

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
        return await self._health.call(
            self._name,
            "reserve",
            lambda: self._ledger.reserve(
                tenant, request_id, amount_micros, limits, now=now, lease_s=lease_s
            ),
            writes=True,
        )

    async def settle(
        self, reservation_id: str, record: UsageRecord, limits: Sequence[BudgetLimit] = ()
    ) -> None:
        # Never retried: a settle that timed out may have billed the image.
        await self._health.call(
            self._name,
            "settle",
            lambda: self._ledger.settle(reservation_id, record, limits),
            writes=True,
        )

    async def release(self, reservation_id: str) -> int:
        return await self._health.call(
            self._name, "release", lambda: self._ledger.release(reservation_id), writes=True
        )

    async def renew_many(
        self, reservation_ids: Sequence[str], *, now: datetime, lease_s: float
    ) -> set[str]:
        return await self._health.call(
            self._name,
            "renew_many",
            lambda: self._ledger.renew_many(reservation_ids, now=now, lease_s=lease_s),
            writes=True,
        )

    async def sweep(self, *, now: datetime) -> int:
        return await self._health.call(
            self._name, "sweep", lambda: self._ledger.sweep(now=now), writes=True
        )

    async def budgets(
        self, tenant: str, limits: Sequence[BudgetLimit], *, now: datetime
    ) -> list[BudgetState]:
        return await self._health.call(
            self._name, "budgets", lambda: self._ledger.budgets(tenant, limits, now=now)
        )

    async def set_budget(self, tenant: str, period: Period, limit_micros: int) -> None:
        await self._health.call(
            self._name,
            "set_budget",
            lambda: self._ledger.set_budget(tenant, period, limit_micros),
            writes=True,
        )

    async def top_up(
        self, tenant: str, period: Period, amount_micros: int, *, base_limit_micros: int
    ) -> int:
        return await self._health.call(
            self._name,
            "top_up",
            lambda: self._ledger.top_up(
                tenant, period, amount_micros, base_limit_micros=base_limit_micros
            ),
            writes=True,
        )

    async def budget_overrides(self, tenant: str) -> dict[Period, int]:
        return await self._health.call(
            self._name, "budget_overrides", lambda: self._ledger.budget_overrides(tenant)
        )

    async def usage_summary(
        self, tenant: str, *, since: datetime, until: datetime
    ) -> list[UsageGroup]:
        return await self._health.call(
            self._name,
            "usage_summary",
            lambda: self._ledger.usage_summary(tenant, since=since, until=until),
        )

    async def recent_usage(self, tenant: str | None, *, limit: int = 100) -> list[UsageRecord]:
        return await self._health.call(
            self._name, "recent_usage", lambda: self._ledger.recent_usage(tenant, limit=limit)
        )

    async def find_watermark(self, watermark_id: str) -> UsageRecord | None:
        return await self._health.call(
            self._name, "find_watermark", lambda: self._ledger.find_watermark(watermark_id)
        )

    async def settled_total(self, tenant: str | None = None) -> int:
        return await self._health.call(
            self._name, "settled_total", lambda: self._ledger.settled_total(tenant)
        )

    async def record_denial(self, record: DenialRecord) -> None:
        await self._health.call(
            self._name, "record_denial", lambda: self._ledger.record_denial(record), writes=True
        )

    async def recent_denials(self, tenant: str | None, *, limit: int = 100) -> list[DenialRecord]:
        return await self._health.call(
            self._name, "recent_denials", lambda: self._ledger.recent_denials(tenant, limit=limit)
        )

    async def claim_idempotency(
        self, tenant: str, key: str, request_hash: str, *, now: datetime, lease_s: float
    ) -> IdempotencyClaim:
        return await self._health.call(
            self._name,
            "claim_idempotency",
            lambda: self._ledger.claim_idempotency(
                tenant, key, request_hash, now=now, lease_s=lease_s
            ),
            writes=True,
        )

    async def complete_idempotency(self, tenant: str, key: str, result: bytes) -> None:
        await self._health.call(
            self._name,
            "complete_idempotency",
            lambda: self._ledger.complete_idempotency(tenant, key, result),
            writes=True,
        )

    async def abandon_idempotency(self, tenant: str, key: str) -> None:
        await self._health.call(
            self._name,
            "abandon_idempotency",
            lambda: self._ledger.abandon_idempotency(tenant, key),
            writes=True,
        )

    # -- the admin audit log ---------------------------------------------------

    async def set_budget_audited(
        self,
        tenant: str,
        period: Period,
        limit_micros: int,
        *,
        base_limit_micros: int | None,
        audit: AuditEntry,
    ) -> AuditEntry:
        return await self._health.call(
            self._name,
            "set_budget_audited",
            lambda: self._ledger.set_budget_audited(
                tenant, period, limit_micros, base_limit_micros=base_limit_micros, audit=audit
            ),
            writes=True,
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
        return await self._health.call(
            self._name,
            "top_up_audited",
            lambda: self._ledger.top_up_audited(
                tenant, period, amount_micros, base_limit_micros=base_limit_micros, audit=audit
            ),
            writes=True,
        )

    async def record_audit(self, audit: AuditEntry) -> AuditEntry:
        return await self._health.call(
            self._name, "record_audit", lambda: self._ledger.record_audit(audit), writes=True
        )

    async def recent_audit(self, tenant: str | None, *, limit: int = 100) -> list[AuditEntry]:
        return await self._health.call(
            self._name, "recent_audit", lambda: self._ledger.recent_audit(tenant, limit=limit)
        )
