"""The ledger seam: value types, the error tree and the `Ledger` protocol.

Money is integer micro-USD everywhere (1 USD = 1_000_000): Python `int`,
SQL BIGINT/INTEGER, never float. Times are tz-aware UTC datetimes and every
operation that depends on the clock takes `now` from the caller, so tests and
replicas agree on what "now" means.

    LedgerError                 the ledger could not do what was asked
    ├── BudgetExhausted         reserve() would overrun a budget (nothing reserved)
    └── LedgerUnavailable       the store failed (locked, unreachable, aborted)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # audit.py imports this module
    from gateway.ledger.audit import AuditEntry

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ROW_LIMIT = 1000  # the most rows one listing call returns


class Period(StrEnum):
    """A budget period; DAY and MONTH windows are calendar windows in UTC."""

    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


def period_window(period: Period, now: datetime) -> tuple[datetime, datetime | None]:
    """The UTC window [start, end) of `period` that contains `now`.

    TOTAL never resets: (epoch, None).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    utc = now.astimezone(UTC)
    if period is Period.DAY:
        start = utc.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if period is Period.MONTH:
        start = utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        year, month = divmod(start.month, 12)
        return start, start.replace(year=start.year + year, month=month + 1)
    return EPOCH, None


@dataclass(frozen=True)
class BudgetLimit:
    """A spending cap for one period (from the policy, or an admin override)."""

    period: Period
    limit_micros: int


@dataclass(frozen=True)
class BudgetState:
    """Where a tenant stands against one limit in the current window."""

    tenant: str
    period: Period
    window_start: datetime
    resets_at: datetime | None
    limit_micros: int
    spent_micros: int
    reserved_micros: int

    @property
    def remaining_micros(self) -> int:
        return max(0, self.limit_micros - self.spent_micros - self.reserved_micros)

    @property
    def used_fraction(self) -> float:
        """(spent + reserved) / limit; 1.0 for a zero limit. A ratio, not money."""
        used = self.spent_micros + self.reserved_micros
        if self.limit_micros <= 0:
            return 1.0
        return used / self.limit_micros


@dataclass(frozen=True)
class UsageRecord:
    """One delivered image and what it cost; unique per (tenant, request, index)."""

    tenant: str
    request_id: str
    image_index: int
    model: str
    task: str
    width: int
    height: int
    quality: str
    cost_micros: int
    image_sha256: str
    created_at: datetime
    route_arm: str = ""  # the A/B arm ("<rule>:<model>") that routed the request
    # Provenance: the id the image's invisible watermark carries ("" when not
    # marked) and the C2PA manifest it was signed with, as the reader's JSON.
    watermark_id: str = ""
    manifest_json: str = ""


@dataclass(frozen=True)
class DenialRecord:
    """A request refused before any spend: recorded, never charged.

    `reason` is the refusal's code (POLICY_DENIED, MODERATION_BLOCKED,
    CONTENT_FILTERED, …); `rule` names what refused it: a policy rule, or
    "moderation:<category>", or "" when nothing more specific applies.
    """

    tenant: str
    request_id: str
    reason: str
    rule: str
    message: str
    created_at: datetime


@dataclass(frozen=True)
class Reservation:
    """Budget held for an in-flight request until settled, released or expired."""

    id: str
    tenant: str
    request_id: str
    amount_micros: int
    expires_at: datetime


@dataclass(frozen=True)
class UsageGroup:
    """Usage totals for one (model, task) pair."""

    model: str
    task: str
    images: int
    cost_micros: int


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class BudgetExhausted(LedgerError):
    """A reservation would overrun `period`'s limit; nothing was reserved."""

    def __init__(
        self,
        tenant: str,
        period: Period,
        limit_micros: int,
        remaining_micros: int,
        resets_at: datetime | None,
    ) -> None:
        resets = resets_at.isoformat() if resets_at else "never"
        super().__init__(
            f"tenant {tenant!r}: {period} budget of {limit_micros} micro-USD exhausted "
            f"({remaining_micros} left, resets at {resets})"
        )
        self.tenant = tenant
        self.period = period
        self.limit_micros = limit_micros
        self.remaining_micros = remaining_micros
        self.resets_at = resets_at


class ReservationLost(LedgerError):
    """A settle found its reservation gone (released, swept, or reclaimed by a
    reservation made after its lease ended) and the budget no longer covers
    the image: nothing was recorded or charged, and the image must not be sent."""

    def __init__(self, tenant: str, reservation_id: str, cause: BudgetExhausted) -> None:
        super().__init__(
            f"reservation {reservation_id} of tenant {tenant!r} is gone and the "
            f"{cause.period.value} budget no longer covers the image "
            f"({cause.remaining_micros} of {cause.limit_micros} micro-USD left)"
        )
        self.tenant = tenant
        self.cause = cause


class LedgerUnavailable(LedgerError):
    """The store failed (locked too long, unreachable, transaction aborted).

    The operation did not take effect unless the failure hid a commit; a
    reservation in that state expires by its lease.
    """


class IdempotencyState(StrEnum):
    """What `claim_idempotency` found."""

    NEW = "new"
    RUNNING = "running"
    DONE = "done"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class IdempotencyClaim:
    """The outcome of a claim; `result` is set when DONE."""

    state: IdempotencyState
    result: bytes | None = None


class Ledger(Protocol):
    """Budgets, leased reservations, per-image usage, denials and idempotency keys.

    Implementations: `SqliteLedger` (one replica) and `PostgresLedger` (many
    replicas). Every mutating method has committed its one transaction when it
    returns; store failures raise `LedgerUnavailable`.
    """

    async def start(self) -> None:
        """Connect and apply pending migrations (safe with concurrent starters)."""

    async def close(self) -> None:
        """Release connections and threads."""

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
        """Hold `amount_micros` against every limit, or raise `BudgetExhausted`.

        A limit fails when spent + reserved (live leases) + amount > limit in
        its window at `now`; the first failing limit is reported. Admin
        overrides replace the policy limit of their period (and add a limit for
        a period the policy leaves open).
        """

    async def settle(
        self, reservation_id: str, record: UsageRecord, limits: Sequence[BudgetLimit] = ()
    ) -> None:
        """Record one image and charge it (once per tenant/request/index), or
        raise `ReservationLost`; fenced, so a budget is never overrun:

        - while the reservation row exists, the cost moves from it to spent,
          under a lock on that row (a reservation made by another replica
          reclaims an expired lease only by deleting its row, under the
          tenant's lock, so the two serialise);
        - once it is gone, the image is charged only if every limit in
          `limits` still covers it, checked in the same transaction under the
          tenant's lock; otherwise `ReservationLost` and nothing is written.

        Safety needs no agreement between replicas' clocks: a clock that runs
        ahead can only end a lease early (and lose that request's remaining
        images), never sell the same budget twice.
        """

    async def release(self, reservation_id: str) -> int:
        """Drop what is left of a reservation; the amount dropped (0 if gone)."""

    async def renew_many(
        self, reservation_ids: Sequence[str], *, now: datetime, lease_s: float
    ) -> set[str]:
        """Extend each live lease to at least now + lease_s, in one transaction;
        the ids renewed (the others had expired or were gone)."""

    async def sweep(self, *, now: datetime) -> int:
        """Delete reservations whose lease ended; how many were deleted.

        `reserve` also deletes the tenant's expired reservations before it
        counts: what is not counted any more must not be settled against."""

    async def budgets(
        self, tenant: str, limits: Sequence[BudgetLimit], *, now: datetime
    ) -> list[BudgetState]:
        """The tenant's standing against each effective limit (one consistent read)."""

    async def set_budget(self, tenant: str, period: Period, limit_micros: int) -> None:
        """Override the policy's limit for this tenant and period."""

    async def top_up(
        self, tenant: str, period: Period, amount_micros: int, *, base_limit_micros: int
    ) -> int:
        """Raise the override by `amount_micros` (from `base_limit_micros` if unset).

        Atomic; returns the new limit.
        """

    async def budget_overrides(self, tenant: str) -> dict[Period, int]:
        """The tenant's admin overrides."""

    async def usage_summary(
        self, tenant: str, *, since: datetime, until: datetime
    ) -> list[UsageGroup]:
        """Images and cost per (model, task) created in [since, until), sorted."""

    async def recent_usage(self, tenant: str | None, *, limit: int = 100) -> list[UsageRecord]:
        """The newest usage records first (all tenants when `tenant` is None)."""

    async def find_watermark(self, watermark_id: str) -> UsageRecord | None:
        """The delivered image whose watermark carries `watermark_id`, if any."""
        ...

    async def settled_total(self, tenant: str | None = None) -> int:
        """The sum of every usage record's cost (for reconciliation)."""

    async def record_denial(self, record: DenialRecord) -> None:
        """Record a refused request (one committed insert); budgets are never touched.

        Every call adds a row: denials are an audit trail, not idempotent.
        """

    async def recent_denials(self, tenant: str | None, *, limit: int = 100) -> list[DenialRecord]:
        """The newest denials first, ties by insertion order (all tenants when None).

        `limit` is 1 to `MAX_ROW_LIMIT`.
        """

    async def claim_idempotency(
        self, tenant: str, key: str, request_hash: str, *, now: datetime, lease_s: float
    ) -> IdempotencyClaim:
        """Claim a tenant's idempotency key for `lease_s` seconds.

        NEW: the caller owns it (fresh, or an expired claim taken over);
        RUNNING: a live claim holds it; DONE: finished, with its result;
        CONFLICT: the key was used for a request with another hash.
        """

    async def complete_idempotency(self, tenant: str, key: str, result: bytes) -> None:
        """Store the result of a claimed key; later claims get DONE with it."""

    async def abandon_idempotency(self, tenant: str, key: str) -> None:
        """Free a running claim that produced no result, so it can be claimed again."""

    # -- the admin audit log (audit.py) ----------------------------------------

    async def set_budget_audited(
        self,
        tenant: str,
        period: Period,
        limit_micros: int,
        *,
        base_limit_micros: int | None,
        audit: AuditEntry,
    ) -> AuditEntry:
        """`set_budget` and its audit entry (which must name `tenant` and `period`),
        in one transaction.

        The entry is stored with the cap before (the override, else
        `base_limit_micros`: the policy's) and after; returned as stored.
        """

    async def top_up_audited(
        self,
        tenant: str,
        period: Period,
        amount_micros: int,
        *,
        base_limit_micros: int,
        audit: AuditEntry,
    ) -> AuditEntry:
        """`top_up` and its audit entry, in one transaction; returned as stored."""

    async def record_audit(self, audit: AuditEntry) -> AuditEntry:
        """Store an audit entry on its own (reloads, refused actions)."""

    async def recent_audit(self, tenant: str | None, *, limit: int = 100) -> list[AuditEntry]:
        """The newest audit entries first, ties by insertion order (all tenants when None).

        `limit` is 1 to `MAX_ROW_LIMIT`.
        """
