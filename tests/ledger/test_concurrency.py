"""Bursts across tasks and replicas: the budget is never overrun, on both stores.

"Replicas" are separate ledger instances on one store: three `SqliteLedger`s
on one file (each with its own connection and thread, as separate processes
would have), or three `PostgresLedger` pools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.ledger import BudgetExhausted, BudgetLimit, Ledger, Reservation

from .conftest import Store
from .support import PRICE, T0, day, month, seconds, usage

BOUGHT = 50
LIMIT = BOUGHT * PRICE
CALLS = 200
LIMITS = [day(LIMIT), month(2 * LIMIT)]


async def try_reserve(ledger: Ledger, request_id: str, amount: int) -> Reservation | None:
    try:
        return await ledger.reserve("acme", request_id, amount, LIMITS, now=T0, lease_s=60)
    except BudgetExhausted:
        return None


async def watch(ledger: Ledger, limits: Sequence[BudgetLimit], stop: asyncio.Event) -> int:
    """Check spent + reserved <= limit until `stop`; how many snapshots were checked."""
    checked = 0
    for _ in range(5_000):  # bounded: the burst ends long before
        for state in await ledger.budgets("acme", limits, now=T0):
            assert state.spent_micros + state.reserved_micros <= state.limit_micros
        checked += 1
        if stop.is_set():
            break
        await asyncio.sleep(0)
    return checked


async def burst(ledgers: Sequence[Ledger], amount: int) -> list[Reservation]:
    """CALLS concurrent reservations spread over the replicas, watched throughout."""
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(ledgers[0], LIMITS, stop))
    results = await asyncio.gather(
        *(try_reserve(ledgers[i % len(ledgers)], f"req-{i}", amount) for i in range(CALLS))
    )
    stop.set()
    assert await watcher > 0
    return [r for r in results if r is not None]


async def replicas(store: Store, ledger: Ledger, count: int) -> list[Ledger]:
    return [ledger, *await store.make_many(count - 1)]


@pytest.mark.parametrize("count", [1, 3], ids=["one-replica", "three-replicas"])
async def test_a_burst_buys_exactly_what_the_limit_allows(
    store: Store, ledger: Ledger, count: int
) -> None:
    ledgers = await replicas(store, ledger, count)

    granted = await burst(ledgers, PRICE)

    assert len(granted) == BOUGHT
    day_state, _ = await ledger.budgets("acme", LIMITS, now=T0)
    assert (day_state.spent_micros, day_state.reserved_micros) == (0, LIMIT)

    await asyncio.gather(
        *(
            ledgers[i % count].settle(r.id, usage("acme", r.request_id, at=T0 + seconds(1)))
            for i, r in enumerate(granted)
        )
    )
    day_state, month_state = await ledger.budgets("acme", LIMITS, now=T0 + seconds(2))
    assert (day_state.spent_micros, day_state.reserved_micros) == (LIMIT, 0)
    assert day_state.remaining_micros == 0
    assert month_state.spent_micros == LIMIT
    assert await ledger.settled_total("acme") == LIMIT


async def serve(ledger: Ledger, index: int) -> int:
    """One request of 3 images: reserve, settle 1-3 of them, release the rest."""
    reservation = await try_reserve(ledger, f"req-{index}", 3 * PRICE)
    if reservation is None:
        return 0
    delivered = index % 3 + 1
    for image in range(delivered):
        await ledger.settle(reservation.id, usage("acme", reservation.request_id, image))
    await ledger.release(reservation.id)
    return delivered * PRICE


async def test_mixed_reserve_settle_release_never_overspends(store: Store, ledger: Ledger) -> None:
    ledgers = await replicas(store, ledger, 3)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(ledger, LIMITS, stop))

    billed = await asyncio.gather(*(serve(ledgers[i % 3], i) for i in range(90)))

    stop.set()
    assert await watcher > 0
    day_state, _ = await ledger.budgets("acme", LIMITS, now=T0)
    assert day_state.reserved_micros == 0
    assert day_state.spent_micros == sum(billed) == await ledger.settled_total("acme")
    assert 0 < day_state.spent_micros <= LIMIT


async def test_a_dead_replicas_hold_expires_by_lease(store: Store, ledger: Ledger) -> None:
    doomed, survivor = await store.make_many(2)
    held = await doomed.reserve("acme", "r1", LIMIT, LIMITS, now=T0, lease_s=30)
    await doomed.settle(held.id, usage("acme", "r1", 0))
    await doomed.close()  # killed: never releases

    with pytest.raises(BudgetExhausted):
        await survivor.reserve("acme", "r2", PRICE, LIMITS, now=T0 + seconds(29), lease_s=30)
    await survivor.reserve("acme", "r2", LIMIT - PRICE, LIMITS, now=T0 + seconds(30), lease_s=30)

    # The reserve reclaimed the dead hold by deleting it (what it no longer
    # counts can no longer be settled against), so the sweeper finds nothing.
    assert await survivor.sweep(now=T0 + seconds(30)) == 0
    assert await survivor.settled_total("acme") == PRICE, "settled images stay billed"
