"""The store-independent half of the ledger: windows, limits and the budget check.

Both stores read a `TenantSnapshot` inside their transaction and hand it to
these pure functions, so the rule "spent + reserved + amount <= limit, for
every limit" is written once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.ledger.base import (
    MAX_ROW_LIMIT,
    BudgetExhausted,
    BudgetLimit,
    BudgetState,
    DenialRecord,
    Period,
    UsageRecord,
    period_window,
)


@dataclass(frozen=True)
class TenantSnapshot:
    """One consistent read of a tenant's counters at `now`."""

    spent: Mapping[Period, int]  # spent in the window of each period containing `now`
    overrides: Mapping[Period, int]
    reserved_micros: int  # remaining amount of live (unexpired) reservations


def window_starts(now: datetime) -> dict[Period, datetime]:
    """The start of the window containing `now`, for every period."""
    return {period: period_window(period, now)[0] for period in Period}


def effective_limits(
    limits: Sequence[BudgetLimit], overrides: Mapping[Period, int]
) -> list[BudgetLimit]:
    """Policy limits with admin overrides applied, in the policy's order.

    An override replaces the policy limit of its period; an override for a
    period the policy does not limit is enforced too (after the policy's).
    """
    applied = [
        BudgetLimit(lim.period, overrides.get(lim.period, lim.limit_micros)) for lim in limits
    ]
    limited = {lim.period for lim in limits}
    extra = [BudgetLimit(p, overrides[p]) for p in Period if p in overrides and p not in limited]
    return applied + extra


def budget_states(
    tenant: str, limits: Sequence[BudgetLimit], snapshot: TenantSnapshot, now: datetime
) -> list[BudgetState]:
    """Where the tenant stands against each effective limit."""
    states = []
    for limit in effective_limits(limits, snapshot.overrides):
        start, end = period_window(limit.period, now)
        states.append(
            BudgetState(
                tenant=tenant,
                period=limit.period,
                window_start=start,
                resets_at=end,
                limit_micros=limit.limit_micros,
                spent_micros=snapshot.spent.get(limit.period, 0),
                reserved_micros=snapshot.reserved_micros,
            )
        )
    return states


def check_reservation(
    tenant: str,
    amount_micros: int,
    limits: Sequence[BudgetLimit],
    snapshot: TenantSnapshot,
    now: datetime,
) -> None:
    """Raise `BudgetExhausted` for the first limit `amount_micros` would overrun."""
    for state in budget_states(tenant, limits, snapshot, now):
        if state.spent_micros + state.reserved_micros + amount_micros > state.limit_micros:
            raise BudgetExhausted(
                tenant, state.period, state.limit_micros, state.remaining_micros, state.resets_at
            )


def spend_windows(record: UsageRecord) -> list[tuple[Period, datetime]]:
    """The (period, window start) counters a usage record is added to."""
    return list(window_starts(record.created_at).items())


def require_micros(name: str, value: int) -> int:
    """Money must be a non-negative int (never float, never bool)."""
    if type(value) is not int:
        raise TypeError(f"{name} must be int micro-USD, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def require_limits(limits: Sequence[BudgetLimit]) -> None:
    for limit in limits:
        require_micros(f"{limit.period} limit", limit.limit_micros)


def require_record(record: UsageRecord) -> None:
    require_micros("cost_micros", record.cost_micros)
    if record.image_index < 0:
        raise ValueError(f"image_index must be >= 0, got {record.image_index}")
    period_window(Period.DAY, record.created_at)  # rejects naive datetimes


def require_denial(record: DenialRecord) -> None:
    if not record.reason:
        raise ValueError("a denial needs a reason")
    period_window(Period.DAY, record.created_at)  # rejects naive datetimes


def require_page_limit(limit: int) -> int:
    """A listing's row count: an int from 1 to MAX_ROW_LIMIT."""
    if type(limit) is not int:
        raise TypeError(f"limit must be int, got {type(limit).__name__}")
    if not 1 <= limit <= MAX_ROW_LIMIT:
        raise ValueError(f"limit must be 1 to {MAX_ROW_LIMIT}, got {limit}")
    return limit


def require_row_limit(limit: int) -> int:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return limit


def lease_expiry(now: datetime, lease_s: float) -> datetime:
    """now + lease_s, refusing naive clocks and non-positive leases."""
    period_window(Period.DAY, now)
    if not lease_s > 0:
        raise ValueError(f"lease_s must be > 0, got {lease_s}")
    return now + timedelta(seconds=lease_s)


def new_reservation_id() -> str:
    return uuid.uuid4().hex
