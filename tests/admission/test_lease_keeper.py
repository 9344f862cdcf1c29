"""The lease keeper renews every request's lease in one ledger call a round,
and still treats each request on its own: a lease the ledger no longer has is
lost at once, a failing store costs a lease only after a whole lease of
failures, and with nothing held it runs no task at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.admission import Ticket
from gateway.admission.leases import LeaseKeeper
from gateway.ledger.sqlite import SqliteLedger
from gateway.limits.memory import MemoryLimiter
from policies import Budget, Quotas, Tenant

LEASE_S = 30.0
ACME = Tenant("acme", "standard", (), Quotas(), Budget())


class CountingLedger(SqliteLedger):
    """A real SQLite ledger that counts renewal calls and can be made to fail."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[int] = []  # how many ids each renew_many call named
        self.failing = False
        self.during: Callable[[], Awaitable[None]] | None = None  # runs inside a call

    async def renew_many(
        self, reservation_ids: Sequence[str], *, now: datetime, lease_s: float
    ) -> set[str]:
        self.calls.append(len(reservation_ids))
        if self.failing:
            raise OSError("disk I/O error")
        if self.during is not None:
            await self.during()
        return await super().renew_many(reservation_ids, now=now, lease_s=lease_s)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[CountingLedger]:
    ledger = CountingLedger(tmp_path / "ledger.db")
    await ledger.start()
    yield ledger
    await ledger.close()


async def _tickets(ledger: CountingLedger, count: int) -> list[Ticket]:
    now = datetime.now(UTC)
    reserve = ledger.reserve
    return [
        Ticket(ACME, f"r{i}", await reserve("acme", f"r{i}", 1, [], now=now, lease_s=LEASE_S))
        for i in range(count)
    ]


async def test_one_call_renews_every_lease_held(ledger: CountingLedger) -> None:
    keeper = LeaseKeeper(ledger, MemoryLimiter(), LEASE_S)
    tickets = await _tickets(ledger, 200)
    before = time.monotonic()
    for ticket in tickets:
        keeper.hold(ticket)
    await keeper.renew_round()
    assert ledger.calls == [200]
    assert all(t.renewed_at >= before and not t.lease_lost for t in tickets)
    for ticket in tickets:
        keeper.let_go(ticket)


async def test_a_lease_the_ledger_lost_is_lost_for_that_request_only(
    ledger: CountingLedger,
) -> None:
    keeper = LeaseKeeper(ledger, MemoryLimiter(), LEASE_S)
    gone, kept = await _tickets(ledger, 2)
    await ledger.release(gone.reservation.id)  # as a reclaim by another replica would
    keeper.hold(gone)
    keeper.hold(kept)
    await keeper.renew_round()
    assert (gone.lease_lost, kept.lease_lost) == (True, False)
    await keeper.renew_round()
    assert ledger.calls == [2, 1]  # a lost lease is not renewed again
    keeper.let_go(gone)
    keeper.let_go(kept)


async def test_a_request_that_finishes_during_a_round_is_not_called_lost(
    ledger: CountingLedger,
) -> None:
    """Its release can win the race with the round that named it: that is a
    request done, not a lease lost."""
    keeper = LeaseKeeper(ledger, MemoryLimiter(), LEASE_S)
    done, running = await _tickets(ledger, 2)
    keeper.hold(done)
    keeper.hold(running)

    async def finish_done() -> None:
        keeper.let_go(done)
        await ledger.release(done.reservation.id)

    ledger.during = finish_done
    await keeper.renew_round()
    assert (done.lease_lost, running.lease_lost) == (False, False)
    keeper.let_go(running)


async def test_a_failing_store_costs_a_lease_only_after_a_whole_lease(
    ledger: CountingLedger,
) -> None:
    keeper = LeaseKeeper(ledger, MemoryLimiter(), LEASE_S)
    fresh, stale = await _tickets(ledger, 2)
    stale.renewed_at = time.monotonic() - LEASE_S  # its last renewal was a lease ago
    keeper.hold(fresh)
    keeper.hold(stale)
    ledger.failing = True
    await keeper.renew_round()
    assert (fresh.lease_lost, stale.lease_lost) == (False, True)
    ledger.failing = False
    await keeper.renew_round()
    assert not fresh.lease_lost
    keeper.let_go(fresh)
    keeper.let_go(stale)


async def test_rounds_run_while_tickets_are_held_and_stop_with_the_last(
    ledger: CountingLedger,
) -> None:
    keeper = LeaseKeeper(ledger, MemoryLimiter(), lease_s=0.06)  # a round every 20 ms
    (ticket,) = await _tickets(ledger, 1)
    keeper.hold(ticket)
    async with asyncio.timeout(5):
        while keeper.rounds < 3:  # noqa: ASYNC110 (the keeper has no event to wait on)
            await asyncio.sleep(0.01)
    task = keeper._task
    keeper.let_go(ticket)
    assert task is not None
    await asyncio.sleep(0)
    assert task.cancelled()
    rounds = keeper.rounds
    await asyncio.sleep(0.1)
    assert keeper.rounds == rounds
