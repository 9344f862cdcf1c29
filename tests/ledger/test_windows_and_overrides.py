"""Contract: UTC day/month windows, admin overrides and top-ups, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.ledger import BudgetExhausted, Ledger, Period

from .support import LEASE_S, PRICE, T0, day, month, total, usage

LIMIT = 10 * PRICE
LAST_MICRO_OF_MARCH_14 = datetime(2025, 3, 14, 23, 59, 59, 999_999, tzinfo=UTC)
MARCH_15 = datetime(2025, 3, 15, tzinfo=UTC)


async def spend(ledger: Ledger, tenant: str, amount: int, at: datetime, request_id: str) -> None:
    reservation = await ledger.reserve(tenant, request_id, amount, [], now=at, lease_s=LEASE_S)
    await ledger.settle(reservation.id, usage(tenant, request_id, cost=amount, at=at))
    await ledger.release(reservation.id)


async def test_day_window_resets_at_utc_midnight(ledger: Ledger) -> None:
    await spend(ledger, "acme", LIMIT, LAST_MICRO_OF_MARCH_14, "late")
    limits = [day(LIMIT), month(2 * LIMIT)]

    with pytest.raises(BudgetExhausted) as refused:
        await ledger.reserve(
            "acme", "r1", 1, limits, now=datetime(2025, 3, 14, 23, 59, 59, 999_000, tzinfo=UTC),
            lease_s=LEASE_S,
        )  # fmt: skip
    assert (refused.value.period, refused.value.resets_at) == (Period.DAY, MARCH_15)

    await ledger.reserve("acme", "r2", LIMIT, limits, now=MARCH_15, lease_s=LEASE_S)
    day_state, month_state = await ledger.budgets("acme", limits, now=MARCH_15)
    assert (day_state.window_start, day_state.spent_micros) == (MARCH_15, 0)
    assert month_state.spent_micros == LIMIT, "the month still counts yesterday"


async def test_month_window_resets_on_the_first_at_utc_midnight(ledger: Ledger) -> None:
    new_year = datetime(2026, 1, 1, tzinfo=UTC)
    await spend(ledger, "acme", LIMIT, datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "x")
    limits = [month(LIMIT), total(3 * LIMIT)]

    with pytest.raises(BudgetExhausted) as refused:
        await ledger.reserve(
            "acme", "r1", 1, limits, now=datetime(2025, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
            lease_s=LEASE_S,
        )  # fmt: skip
    assert (refused.value.period, refused.value.resets_at) == (Period.MONTH, new_year)

    month_state, total_state = await ledger.budgets("acme", limits, now=new_year)
    assert (month_state.window_start, month_state.spent_micros) == (new_year, 0)
    assert month_state.resets_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert (total_state.spent_micros, total_state.resets_at) == (LIMIT, None)


async def test_spend_is_counted_in_the_window_of_the_image_not_the_reservation(
    ledger: Ledger,
) -> None:
    reservation = await ledger.reserve(
        "acme", "r1", PRICE, [day(LIMIT)], now=LAST_MICRO_OF_MARCH_14, lease_s=LEASE_S
    )
    await ledger.settle(reservation.id, usage("acme", "r1", at=MARCH_15))

    (old,) = await ledger.budgets("acme", [day(LIMIT)], now=LAST_MICRO_OF_MARCH_14)
    (new,) = await ledger.budgets("acme", [day(LIMIT)], now=MARCH_15)
    assert (old.spent_micros, new.spent_micros) == (0, PRICE)


async def test_set_budget_overrides_the_policy_limit(ledger: Ledger) -> None:
    await ledger.set_budget("acme", Period.DAY, 2 * LIMIT)

    await ledger.reserve("acme", "r1", 15 * PRICE, [day(LIMIT)], now=T0, lease_s=LEASE_S)
    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=T0)
    assert (state.limit_micros, state.remaining_micros) == (2 * LIMIT, 5 * PRICE)

    await ledger.set_budget("acme", Period.DAY, 0)
    with pytest.raises(BudgetExhausted) as refused:
        await ledger.reserve("acme", "r2", 0, [day(LIMIT)], now=T0, lease_s=LEASE_S)
    assert refused.value.limit_micros == 0


async def test_an_override_limits_a_period_the_policy_leaves_open(ledger: Ledger) -> None:
    await ledger.set_budget("acme", Period.MONTH, PRICE)

    with pytest.raises(BudgetExhausted) as refused:
        await ledger.reserve("acme", "r1", 2 * PRICE, [day(LIMIT)], now=T0, lease_s=LEASE_S)
    assert refused.value.period is Period.MONTH
    states = await ledger.budgets("acme", [day(LIMIT)], now=T0)
    assert [(s.period, s.limit_micros) for s in states] == [
        (Period.DAY, LIMIT),
        (Period.MONTH, PRICE),
    ]


async def test_overrides_are_per_tenant(ledger: Ledger) -> None:
    await ledger.set_budget("acme", Period.DAY, 5)
    await ledger.set_budget("acme", Period.TOTAL, 7)

    assert await ledger.budget_overrides("acme") == {Period.DAY: 5, Period.TOTAL: 7}
    assert await ledger.budget_overrides("globex") == {}


async def test_top_up_starts_from_the_policy_limit_then_adds(ledger: Ledger) -> None:
    first = await ledger.top_up("acme", Period.MONTH, PRICE, base_limit_micros=LIMIT)
    second = await ledger.top_up("acme", Period.MONTH, PRICE, base_limit_micros=LIMIT)

    assert (first, second) == (LIMIT + PRICE, LIMIT + 2 * PRICE)
    assert await ledger.budget_overrides("acme") == {Period.MONTH: LIMIT + 2 * PRICE}
    (state,) = await ledger.budgets("acme", [month(LIMIT)], now=T0)
    assert state.limit_micros == LIMIT + 2 * PRICE


async def test_budget_state_fractions(ledger: Ledger) -> None:
    await spend(ledger, "acme", 3 * PRICE, T0, "r1")
    await ledger.reserve("acme", "r2", 2 * PRICE, [], now=T0, lease_s=LEASE_S)

    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=T0)
    assert (state.spent_micros, state.reserved_micros, state.remaining_micros) == (
        3 * PRICE,
        2 * PRICE,
        5 * PRICE,
    )
    assert state.used_fraction == 0.5
