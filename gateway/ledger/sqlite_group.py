"""Group commit for the SQLite ledger: the jobs that queued while the last
commit was syncing share the next one.

One worker thread owns the connection. It takes every job waiting (up to
`max_batch`), runs them one after another inside one `BEGIN IMMEDIATE`, each
in its own savepoint (`sqlite_ops.write` turns into `SAVEPOINT` inside a
transaction), then commits once and only then answers them. So:

- each job still sees every earlier job's writes, in order: reservations stay
  atomic and serial, exactly as with one transaction per job;
- a job that fails is rolled back to its savepoint alone and gets its error;
  the others commit;
- a job whose caller stopped waiting before it started (a store timeout on
  a deep queue) is withdrawn and never runs: a timed-out settle that was
  still queued bills nothing;
- nobody hears "done" before the shared COMMIT has returned: a settle is
  durable before its image is sent, as before. If the COMMIT fails, every job
  of the batch gets that error and none of their writes exist.

What it saves is the sync per transaction: with many concurrent requests one
fsync covers all the reservations and settles that arrived during the last.

Durability by write: a job says whether it must be `durable`. A batch with a
durable job commits at `synchronous=FULL` (the WAL is synced before COMMIT
returns); a batch of only non-durable jobs (reservations, releases, lease
renewals) at `synchronous=NORMAL`: committed and visible to every process at
once, surviving a crash of the process, but not synced until the next FULL
commit or checkpoint, so a power cut may take it back. The WAL is one file
appended in order, so a FULL commit syncs every commit before it as well: a
settle that has been answered can never lose the reservation it settled
against, and what a power cut can lose is a reservation or release whose
request died with the machine (a lost release holds budget until its lease
ends; nothing is overspent).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class _Job:
    work: Callable[[], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    grouped: bool  # False: runs alone, outside any transaction (open, close)
    durable: bool = True  # False: may commit without a sync (see the module doc)
    # A caller that stops waiting (a store timeout cancels it) withdraws a job
    # that has not started: it never runs, so it never commits.
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: bool = False
    withdrawn: bool = False

    def start(self) -> bool:
        """Claim the job for the worker; False if its caller withdrew it."""
        with self.lock:
            if self.withdrawn:
                return False
            self.started = True
            return True

    def withdraw(self) -> bool:
        """Take the job back unless the worker has started it; whether it was."""
        with self.lock:
            if not self.started:
                self.withdrawn = True
            return self.withdrawn


class WriterTurn:
    """Takes turns writing with the other processes on the same file (worker
    processes, `gateway/workers/`): an exclusive `flock` on a file beside the
    ledger, held from BEGIN to COMMIT. SQLite's own busy handler polls with
    sleeps of up to 100 ms, so a process with a deep queue took the write lock
    again between another's polls and starved it for seconds (two workers
    admitting 10,000 streams: 1,846 refused UNAVAILABLE by the store guard);
    a process blocked in `flock` is woken as soon as the lock is let go.
    Other writers (the CLI) still meet SQLite's busy_timeout."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    @contextlib.contextmanager
    def taken(self) -> Iterator[None]:
        """Hold the turn for the block; OSError, before it runs, if the lock
        file cannot be opened or locked."""
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError:  # closing the file lets the lock go as surely
                log.warning("could not unlock %s; closing it", self._path, exc_info=True)
                self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class GroupCommit:
    """A worker thread that runs ledger jobs in shared transactions."""

    def __init__(
        self,
        connection: Callable[[], sqlite3.Connection | None],
        *,
        max_batch: int = 256,
        turn: WriterTurn | None = None,
    ) -> None:
        self._connection = connection
        self._max_batch = max_batch
        self._turn = turn
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="ledger-sqlite", daemon=True)
        self._thread.start()
        self.batches = 0  # commits made for grouped jobs (for tests and benches)
        # When the worker last finished a job or a batch (time.monotonic()):
        # the store guard tells a deep queue (recent) from a hung disk (stale).
        self.last_progress = time.monotonic()

    async def submit(
        self, work: Callable[[], Any], *, grouped: bool = True, durable: bool = True
    ) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        job = _Job(work, loop, future, grouped, durable)
        self._queue.put(job)
        try:
            return await future
        except asyncio.CancelledError:
            if job.withdraw():
                log.debug("ledger job withdrawn before it ran")
            raise

    def stop(self) -> None:
        """Finish the jobs queued so far, then end the thread."""
        self._queue.put(None)
        self._thread.join()
        if self._turn is not None:
            self._turn.close()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if not first.grouped:
                if first.start():
                    _answer_all([first], [_run(first.work)])
                    self.last_progress = time.monotonic()
                continue
            batch, stop = [first], False
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                if not job.grouped:  # runs alone: after this batch
                    self._commit(batch)
                    batch = []
                    if job.start():
                        _answer_all([job], [_run(job.work)])
                        self.last_progress = time.monotonic()
                    continue
                batch.append(job)
            if batch:
                self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Job]) -> None:
        batch = [job for job in batch if job.start()]  # withdrawn ones never run
        if not batch:
            return
        if self._turn is None:
            outcomes = self._transact(batch)
        else:
            try:
                with self._turn.taken():
                    outcomes = self._transact(batch)
            except OSError as exc:  # the turn could not be taken: nothing ran
                outcomes = _all_failed(batch, exc)
        _answer_all(batch, outcomes)  # after the turn is let go

    def _transact(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        """Run `batch` in one transaction; each job's outcome, every one an
        error if the transaction did not commit."""
        conn = self._connection()
        if conn is None:
            from gateway.ledger.base import LedgerError

            return _all_failed(batch, LedgerError("ledger is not started"))
        try:
            level = "FULL" if any(job.durable for job in batch) else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {level}")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return _all_failed(batch, exc)
        outcomes = []
        for job in batch:
            if not conn.in_transaction:
                break  # SQLite rolled the whole transaction back (I/O error, full disk)
            outcomes.append(_run(job.work))
        if not conn.in_transaction:
            # Nothing of this batch exists, whatever its jobs returned; and no
            # later job ran on its own, outside the shared transaction.
            lost = sqlite3.OperationalError("the ledger transaction was rolled back")
            return _all_failed(batch, lost)
        try:
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return _all_failed(batch, exc)
        self.batches += 1
        self.last_progress = time.monotonic()
        return outcomes


def _all_failed(batch: list[_Job], error: BaseException) -> list[tuple[bool, Any]]:
    return [(False, error)] * len(batch)


def _run(work: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, work()
    except BaseException as exc:
        return False, exc


def _answer_all(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Answer a committed batch with one wake-up per event loop, not one per
    job (each `call_soon_threadsafe` writes to the loop's self-pipe)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
    for job, (ok, value) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job, ok, value))
    for loop, answers in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_all, answers)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("%d ledger jobs finished after their event loop closed", len(answers))


def _settle_all(answers: list[tuple[_Job, bool, Any]]) -> None:
    for job, ok, value in answers:
        _settle(job, ok, value)


def _settle(job: _Job, ok: bool, value: Any) -> None:
    if job.future.done():  # the caller stopped waiting (cancelled)
        return
    if ok:
        job.future.set_result(value)
    else:
        job.future.set_exception(value)
