"""Group commit in the SQLite ledger: jobs queued together share one
transaction and one commit, yet each behaves as if it had its own: serial,
atomic, durable before it answers, and alone in failing."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.ledger import BudgetExhausted, LedgerUnavailable, Period
from gateway.ledger import sqlite_ops as ops
from gateway.ledger.sqlite import SqliteLedger

from .support import LEASE_S, PRICE, T0, day, usage


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    await ledger.start()
    yield ledger
    await ledger.close()


_PARKED: set[asyncio.Future[object]] = set()


async def _held(ledger: SqliteLedger) -> threading.Event:
    """Park the worker thread on a job of its own until the event is set, so
    everything submitted meanwhile lands in one batch."""
    release, parked = threading.Event(), threading.Event()

    def park() -> None:
        parked.set()
        release.wait(10)

    assert ledger._group is not None
    parking = asyncio.ensure_future(ledger._group.submit(park, grouped=False))
    await asyncio.to_thread(parked.wait, 10)
    _PARKED.add(parking)
    parking.add_done_callback(_PARKED.discard)
    return release


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read with a connection of its own: only what is committed is visible."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_concurrent_reservations_share_commits_and_buy_exactly_the_limit(
    ledger: SqliteLedger,
) -> None:
    release = await _held(ledger)
    attempts = [
        ledger.reserve("acme", f"r{i}", PRICE, [day(10 * PRICE)], now=T0, lease_s=LEASE_S)
        for i in range(25)
    ]
    pending = asyncio.gather(*attempts, return_exceptions=True)
    await asyncio.sleep(0.05)  # all 25 queued behind the parked job
    release.set()
    results = await pending
    granted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(granted) == 10
    assert all(isinstance(r, BudgetExhausted) for r in refused)
    assert ledger._group is not None
    assert ledger._group.batches == 1
    # Committed before anyone was answered: another connection sees all ten.
    held = _rows(ledger._path, "SELECT COUNT(*), SUM(remaining_micros) FROM reservations")
    assert held == [(10, 10 * PRICE)]


async def test_a_failing_job_is_rolled_back_alone(ledger: SqliteLedger) -> None:
    first = await ledger.reserve("acme", "r1", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
    release = await _held(ledger)

    def fails_after_writing(conn: sqlite3.Connection) -> None:
        with ops.write(conn):
            ops.set_budget(conn, "acme", Period.DAY, 123)
            raise RuntimeError("boom")

    lost = ledger._run(fails_after_writing)
    billed = ledger.settle(first.id, usage("acme", "r1"))
    other = ledger.reserve("globex", "g1", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
    pending = asyncio.gather(lost, billed, other, return_exceptions=True)
    await asyncio.sleep(0.05)
    release.set()
    failed, settled, reserved = await pending
    assert isinstance(failed, RuntimeError)
    assert settled is None
    assert not isinstance(reserved, BaseException)
    records = _rows(ledger._path, "SELECT tenant, request_id FROM usage_records")
    assert records == [("acme", "r1")]
    assert _rows(ledger._path, "SELECT COUNT(*) FROM budget_overrides") == [(0,)]  # undone
    held = _rows(ledger._path, "SELECT tenant, remaining_micros FROM reservations ORDER BY tenant")
    assert held == [("acme", 0), ("globex", PRICE)]  # acme's settled, globex's reserved


async def test_a_lost_transaction_fails_the_whole_batch_and_commits_none_of_it(
    ledger: SqliteLedger,
) -> None:
    """If SQLite rolls the shared transaction back mid-batch (an I/O error does),
    no job may report success, and none may run on its own outside it."""
    release = await _held(ledger)
    before = ledger.reserve("acme", "r1", PRICE, [day(5 * PRICE)], now=T0, lease_s=LEASE_S)
    lose = ledger._run(lambda conn: conn.execute("ROLLBACK"))
    after = ledger.reserve("acme", "r2", PRICE, [day(5 * PRICE)], now=T0, lease_s=LEASE_S)
    pending = asyncio.gather(before, lose, after, return_exceptions=True)
    await asyncio.sleep(0.05)
    release.set()
    results = await pending
    assert all(isinstance(r, LedgerUnavailable) for r in results), results
    assert _rows(ledger._path, "SELECT COUNT(*) FROM reservations") == [(0,)]
    # The ledger goes on: the next job gets a transaction of its own.
    again = await ledger.reserve("acme", "r3", PRICE, [day(5 * PRICE)], now=T0, lease_s=LEASE_S)
    assert again.amount_micros == PRICE


async def test_a_job_whose_caller_gave_up_while_it_queued_never_runs(
    ledger: SqliteLedger,
) -> None:
    """A store timeout on a deep queue must not leave a settle that commits
    later, billing an image that was never sent."""
    reservation = await ledger.reserve("acme", "r1", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
    release = await _held(ledger)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ledger.settle(reservation.id, usage("acme", "r1")), 0.05)
    kept = asyncio.ensure_future(ledger.settle(reservation.id, usage("acme", "r1", 1)))
    await asyncio.sleep(0.05)
    release.set()
    await kept
    billed = _rows(ledger._path, "SELECT image_index FROM usage_records")
    assert billed == [(1,)]  # only the settle that was still awaited


def _synchronous(conn: sqlite3.Connection) -> int:
    """The level the running batch commits at: 1 NORMAL (no sync), 2 FULL."""
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def test_reservations_and_releases_alone_commit_without_a_sync(
    ledger: SqliteLedger,
) -> None:
    """Durability by write: a batch of only reservations, releases and renewals
    need not reach the disk (it dies with the process that holds it), so it
    commits at synchronous=NORMAL, yet is committed for every other reader."""
    held = await ledger.reserve("acme", "r0", PRICE, [day(9 * PRICE)], now=T0, lease_s=LEASE_S)
    release = await _held(ledger)
    jobs = [
        ledger.reserve("acme", f"r{i}", PRICE, [day(9 * PRICE)], now=T0, lease_s=LEASE_S)
        for i in (1, 2)
    ]
    jobs.append(ledger.release(held.id))
    jobs.append(ledger.renew_many([held.id], now=T0, lease_s=LEASE_S))
    probe = ledger._run(_synchronous, durable=False)
    pending = asyncio.gather(*jobs, probe)
    await asyncio.sleep(0.05)
    release.set()
    *_, level = await pending
    assert level == 1
    assert ledger._group is not None
    assert ledger._group.batches == 2  # r0's, then this one
    assert _rows(ledger._path, "SELECT COUNT(*) FROM reservations") == [(2,)]


async def test_a_batch_with_a_settle_commits_with_a_sync(ledger: SqliteLedger) -> None:
    """A settle must be on disk before its image is sent: the batch it shares
    with reservations commits at synchronous=FULL, which syncs the WAL, and so
    every commit before it as well."""
    reservation = await ledger.reserve("acme", "r1", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
    release = await _held(ledger)
    other = ledger.reserve("globex", "g1", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
    billed = ledger.settle(reservation.id, usage("acme", "r1"))
    probe = ledger._run(_synchronous, durable=False)
    pending = asyncio.gather(other, billed, probe)
    await asyncio.sleep(0.05)
    release.set()
    *_, level = await pending
    assert level == 2
    # The next batch without a settle goes back to NORMAL.
    assert await ledger._run(_synchronous, durable=False) == 1


async def test_a_batch_holds_the_writer_turn_from_begin_to_commit(
    ledger: SqliteLedger, tmp_path: Path
) -> None:
    """Processes sharing the file (worker processes) take turns by `flock` on a
    file beside it, held for exactly each transaction: a waiting process is
    woken when it is let go instead of polling SQLite's lock (which starved
    one of two busy workers for seconds)."""
    turn = tmp_path / "ledger.db.writer-lock"

    def taken_by_someone() -> bool:
        fd = os.open(turn, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing lets go of a lock this probe took
        return False

    seen_inside = await ledger._run(lambda conn: taken_by_someone())
    assert seen_inside
    await ledger.reserve("acme", "r1", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
    assert not taken_by_someone()


async def test_a_turn_that_cannot_be_taken_fails_the_batch_and_the_ledger_goes_on(
    tmp_path: Path,
) -> None:
    """An unusable lock file (here a folder in its place) fails the jobs that
    needed it with LedgerUnavailable, never leaves them waiting, and once it
    is usable again the ledger writes as before."""
    blocker = tmp_path / "ledger.db.writer-lock"
    blocker.mkdir()
    ledger = SqliteLedger(tmp_path / "ledger.db")
    await ledger.start()
    try:
        with pytest.raises(LedgerUnavailable):  # within 10 s: a dead writer would hang it
            async with asyncio.timeout(10):
                await ledger.reserve("acme", "r1", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
        blocker.rmdir()
        again = await ledger.reserve("acme", "r2", PRICE, [day(PRICE)], now=T0, lease_s=LEASE_S)
        assert again.amount_micros == PRICE
    finally:
        async with asyncio.timeout(10):
            await ledger.close()
