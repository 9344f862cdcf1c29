"""Contract: reserve, settle, release, renew and sweep, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.ledger import (
    BudgetExhausted,
    BudgetLimit,
    Ledger,
    LedgerError,
    Period,
    ReservationLost,
)

from .support import LEASE_S, PRICE, T0, day, month, seconds, usage

LIMIT = 10 * PRICE


async def test_reserve_within_limit_holds_the_amount(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", 3 * PRICE, [day(LIMIT)], now=T0, lease_s=30)

    assert reservation.tenant == "acme"
    assert reservation.request_id == "r1"
    assert reservation.amount_micros == 3 * PRICE
    assert reservation.expires_at == T0 + seconds(30)
    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=T0)
    assert (state.spent_micros, state.reserved_micros) == (0, 3 * PRICE)
    assert state.remaining_micros == 7 * PRICE


async def test_reserve_up_to_exactly_the_limit(ledger: Ledger) -> None:
    await ledger.reserve("acme", "r1", LIMIT, [day(LIMIT)], now=T0, lease_s=LEASE_S)

    with pytest.raises(BudgetExhausted):
        await ledger.reserve("acme", "r2", 1, [day(LIMIT)], now=T0, lease_s=LEASE_S)


@pytest.mark.parametrize(
    ("period", "resets_at"),
    [
        (Period.DAY, datetime(2025, 3, 15, tzinfo=UTC)),
        (Period.MONTH, datetime(2025, 4, 1, tzinfo=UTC)),
        (Period.TOTAL, None),
    ],
)
async def test_over_limit_is_refused_with_remaining_and_reset(
    ledger: Ledger, period: Period, resets_at: datetime | None
) -> None:
    # Only `period` is tight; the other two leave plenty of room.
    limits = [BudgetLimit(p, LIMIT if p is period else 10 * LIMIT) for p in Period]
    await ledger.reserve("acme", "r1", 4 * PRICE, limits, now=T0, lease_s=LEASE_S)

    with pytest.raises(BudgetExhausted) as refused:
        await ledger.reserve("acme", "r2", 7 * PRICE, limits, now=T0, lease_s=LEASE_S)

    error = refused.value
    assert (error.tenant, error.period, error.limit_micros) == ("acme", period, LIMIT)
    assert error.remaining_micros == 6 * PRICE
    assert error.resets_at == resets_at
    states = await ledger.budgets("acme", limits, now=T0)
    assert {s.reserved_micros for s in states} == {4 * PRICE}, "a refusal reserves nothing"


async def test_the_first_failing_limit_is_reported(ledger: Ledger) -> None:
    with pytest.raises(BudgetExhausted) as refused:
        await ledger.reserve(
            "acme", "r1", 5 * PRICE, [day(4 * PRICE), month(3 * PRICE)], now=T0, lease_s=LEASE_S
        )
    assert refused.value.period is Period.DAY


async def test_zero_amount_without_limits_is_allowed(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", 0, [], now=T0, lease_s=LEASE_S)
    assert reservation.amount_micros == 0
    assert await ledger.release(reservation.id) == 0


async def test_money_must_be_int_micros(ledger: Ledger) -> None:
    with pytest.raises(TypeError):
        await ledger.reserve("acme", "r1", 0.5, [], now=T0, lease_s=LEASE_S)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        await ledger.reserve("acme", "r1", -1, [], now=T0, lease_s=LEASE_S)
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.reserve("acme", "r1", 1, [], now=datetime(2025, 1, 1), lease_s=LEASE_S)


async def test_tenants_do_not_share_budgets(ledger: Ledger) -> None:
    await ledger.reserve("acme", "r1", LIMIT, [day(LIMIT)], now=T0, lease_s=LEASE_S)
    other = await ledger.reserve("globex", "r1", LIMIT, [day(LIMIT)], now=T0, lease_s=LEASE_S)
    assert other.amount_micros == LIMIT


async def test_settle_moves_reserved_to_spent_and_records_usage(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", 3 * PRICE, [day(LIMIT)], now=T0, lease_s=60)

    await ledger.settle(reservation.id, usage("acme", "r1", 0, at=T0 + seconds(5)))

    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=T0 + seconds(6))
    assert (state.spent_micros, state.reserved_micros) == (PRICE, 2 * PRICE)
    (record,) = await ledger.recent_usage("acme")
    assert record == usage("acme", "r1", 0, at=T0 + seconds(5))


async def test_settling_the_same_image_twice_charges_once(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", 2 * PRICE, [day(LIMIT)], now=T0, lease_s=60)

    await ledger.settle(reservation.id, usage("acme", "r1", 0))
    await ledger.settle(reservation.id, usage("acme", "r1", 0))

    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=T0)
    assert (state.spent_micros, state.reserved_micros) == (PRICE, PRICE)
    assert await ledger.settled_total("acme") == PRICE
    assert len(await ledger.recent_usage("acme")) == 1


async def test_settle_rejects_another_tenants_reservation(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", PRICE, [], now=T0, lease_s=LEASE_S)

    with pytest.raises(LedgerError, match="another tenant"):
        await ledger.settle(reservation.id, usage("globex", "r1", 0))
    assert await ledger.settled_total() == 0


async def test_release_returns_the_remainder_once(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", 3 * PRICE, [day(LIMIT)], now=T0, lease_s=60)
    await ledger.settle(reservation.id, usage("acme", "r1", 0))

    assert await ledger.release(reservation.id) == 2 * PRICE
    assert await ledger.release(reservation.id) == 0
    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=T0)
    assert (state.spent_micros, state.reserved_micros) == (PRICE, 0)


async def test_an_expired_reservation_stops_blocking_and_is_swept(ledger: Ledger) -> None:
    await ledger.reserve("acme", "dead", LIMIT, [day(LIMIT)], now=T0, lease_s=10)
    await ledger.reserve("globex", "idle", PRICE, [], now=T0, lease_s=10)
    with pytest.raises(BudgetExhausted):
        await ledger.reserve("acme", "r2", PRICE, [day(LIMIT)], now=T0 + seconds(9.999), lease_s=10)

    later = T0 + seconds(10)  # the lease ends at T0 + 10 s exactly
    await ledger.reserve("acme", "r2", LIMIT, [day(LIMIT)], now=later, lease_s=10)

    # acme's dead hold was reclaimed (deleted) by acme's own reserve; the
    # sweeper takes what nobody reclaimed.
    assert await ledger.sweep(now=later) == 1
    assert await ledger.sweep(now=later) == 0
    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=later)
    assert state.reserved_micros == LIMIT


async def test_a_settle_against_a_reclaimed_reservation_is_refused_when_the_budget_is_gone(
    ledger: Ledger,
) -> None:
    """The fence: once another reservation took the budget of an expired
    lease, the late owner cannot settle against it."""
    limits = [day(LIMIT)]
    stale = await ledger.reserve("acme", "r1", LIMIT, limits, now=T0, lease_s=10)
    await ledger.reserve("acme", "r2", LIMIT, limits, now=T0 + seconds(10), lease_s=60)

    with pytest.raises(ReservationLost):
        await ledger.settle(stale.id, usage("acme", "r1", 0, at=T0 + seconds(11)), limits)

    (state,) = await ledger.budgets("acme", limits, now=T0 + seconds(11))
    assert (state.spent_micros, state.reserved_micros) == (0, LIMIT)
    assert await ledger.settled_total("acme") == 0
    assert await ledger.recent_usage("acme") == []


async def test_a_late_settle_bills_what_the_budget_still_covers(ledger: Ledger) -> None:
    limits = [day(3 * PRICE)]
    stale = await ledger.reserve("acme", "r1", 2 * PRICE, limits, now=T0, lease_s=10)
    await ledger.reserve("acme", "r2", 2 * PRICE, limits, now=T0 + seconds(10), lease_s=60)

    await ledger.settle(stale.id, usage("acme", "r1", 0, at=T0 + seconds(11)), limits)
    with pytest.raises(ReservationLost):
        await ledger.settle(stale.id, usage("acme", "r1", 1, at=T0 + seconds(11)), limits)
    # A repeated settle of a billed image is a no-op, never a refusal.
    await ledger.settle(stale.id, usage("acme", "r1", 0, at=T0 + seconds(12)), limits)

    (state,) = await ledger.budgets("acme", limits, now=T0 + seconds(12))
    assert (state.spent_micros, state.reserved_micros) == (PRICE, 2 * PRICE)


async def test_settle_after_expiry_still_bills(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", 2 * PRICE, [day(LIMIT)], now=T0, lease_s=1)
    assert await ledger.sweep(now=T0 + seconds(2)) == 1

    await ledger.settle(reservation.id, usage("acme", "r1", 0, at=T0 + seconds(3)))

    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=T0 + seconds(3))
    assert (state.spent_micros, state.reserved_micros) == (PRICE, 0)
    assert await ledger.settled_total("acme") == PRICE
    assert await ledger.release(reservation.id) == 0


async def test_renew_extends_a_live_lease_only(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", LIMIT, [day(LIMIT)], now=T0, lease_s=10)

    assert await ledger.renew_many([reservation.id], now=T0 + seconds(8), lease_s=10) == {
        reservation.id
    }
    with pytest.raises(BudgetExhausted):  # still held at T0 + 15 s thanks to the renewal
        await ledger.reserve("acme", "r2", 1, [day(LIMIT)], now=T0 + seconds(15), lease_s=10)
    assert not await ledger.renew_many([reservation.id], now=T0 + seconds(18), lease_s=10)
    assert not await ledger.renew_many(["no-such-reservation"], now=T0, lease_s=10)


async def test_renew_many_renews_the_live_leases_in_one_call(ledger: Ledger) -> None:
    """One call for every request in flight (the lease keeper's round): the
    live leases are extended and named; expired, released and unknown ones
    are not, and stay gone."""
    long = await ledger.reserve("acme", "r1", PRICE, [day(LIMIT)], now=T0, lease_s=20)
    short = await ledger.reserve("acme", "r2", PRICE, [day(LIMIT)], now=T0, lease_s=5)
    freed = await ledger.reserve("globex", "g1", PRICE, [], now=T0, lease_s=20)
    other = await ledger.reserve("globex", "g2", PRICE, [], now=T0, lease_s=20)
    await ledger.release(freed.id)
    ids = [long.id, short.id, freed.id, other.id, "no-such-reservation"]

    renewed = await ledger.renew_many(ids, now=T0 + seconds(8), lease_s=20)

    assert renewed == {long.id, other.id}
    # r1 is held until T0 + 28 s now; r2's lease ended at T0 + 5 s.
    (state,) = await ledger.budgets("acme", [day(LIMIT)], now=T0 + seconds(25))
    assert state.reserved_micros == PRICE
    assert await ledger.renew_many([], now=T0, lease_s=20) == set()
    many = [
        (await ledger.reserve("initech", f"m{i}", 1, [], now=T0, lease_s=20)).id
        for i in range(1200)  # more ids than one SQL statement takes
    ]
    assert await ledger.renew_many(many, now=T0 + seconds(1), lease_s=20) == set(many)


async def test_renew_after_release_is_refused(ledger: Ledger) -> None:
    reservation = await ledger.reserve("acme", "r1", PRICE, [], now=T0, lease_s=10)
    await ledger.release(reservation.id)
    assert not await ledger.renew_many([reservation.id], now=T0, lease_s=10)
