"""Which stores answer, time-bounded calls to them, and the probe that brings them back.

Each named store ("ledger", "limiter") is up or down:

    up    calls run, each bounded by the store's timeout. A call that times out
          or raises the store's unavailability error marks it down; a call
          that returns marks it up.
    down  calls fail at once with the store's unavailability error, without
          touching the store; `watch()` probes it every `probe_interval_s`
          (one cheap read, same timeout) and marks it up when it answers.

`on_change(all_up)` is awaited whenever the overall state flips (the server
turns gRPC health NOT_SERVING / SERVING with it).

A bounded call returns within its timeout even if the store's client does not
unwind promptly when cancelled (asyncpg, for one, may wait for a cancel
request that itself hangs): the call runs in its own task, which is cancelled
and left to finish in the background when the time is up. A timed-out call
may therefore still take effect: nothing here retries it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
OnChange = Callable[[bool], Awaitable[None]]
Probe = Callable[[], Awaitable[object]]
# When the store last finished a piece of work (time.monotonic()), if it can tell.
Progress = Callable[[], float | None]


@dataclass
class _Store:
    name: str
    timeout_s: float
    probe: Probe
    unavailable: type[Exception]
    up: bool = True
    # Bumped each time the store comes back, so a call that started before
    # the recovery cannot mark it down again with stale news.
    epoch: int = 0
    reason: str = ""
    down_since: float = 0.0
    progress: Progress | None = None

    def busy(self) -> bool:
        """Whether the store finished some work within its timeout: a call that
        is late because it queues behind others is waiting, not hung."""
        last = self.progress() if self.progress is not None else None
        return last is not None and time.monotonic() - last < self.timeout_s


class StoreHealth:
    """Up/down state of each store, the bounded calls and the background probe."""

    def __init__(self, *, probe_interval_s: float, on_change: OnChange | None = None) -> None:
        if not probe_interval_s > 0:
            raise ValueError(f"probe_interval_s must be > 0, got {probe_interval_s}")
        self._probe_interval_s = probe_interval_s
        self._on_change = on_change
        self._stores: dict[str, _Store] = {}
        self._reported = True  # what on_change last said (the server starts SERVING)
        self._notify_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    def add(
        self,
        name: str,
        *,
        timeout_s: float,
        probe: Probe,
        unavailable: type[Exception],
        progress: Progress | None = None,
    ) -> None:
        """Track store `name` (initially up).

        `unavailable` is the store's error for "cannot answer": raised by the
        store it marks it down, and it is what a timed-out or fast-failed call
        raises (built from one message argument). `progress`, if given, says
        when the store last finished any work: a call past its timeout keeps
        waiting, window by window, while the store is still finishing others
        (a deep queue under load is not an outage).
        """
        if name in self._stores:
            raise ValueError(f"store {name!r} is already tracked")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self._stores[name] = _Store(name, timeout_s, probe, unavailable, progress=progress)

    @property
    def all_up(self) -> bool:
        return all(store.up for store in self._stores.values())

    def is_up(self, name: str) -> bool:
        return self._stores[name].up

    def states(self) -> dict[str, bool]:
        """Each store's name and whether it is up."""
        return {name: store.up for name, store in self._stores.items()}

    async def call(
        self, name: str, what: str, op: Callable[[], Awaitable[T]], *, writes: bool = False
    ) -> T:
        """Run `op()` against store `name` within its timeout, or fail fast if it is down.

        Raises the store's unavailability error when the store is down (`op`
        is not called), when `op` does not finish in time (it is cancelled and
        never retried: a write may still have committed, which the error says
        when `writes`) or when `op` raised it. `what` names the operation.
        """
        store = self._stores[name]
        if not store.up:
            down_for = time.monotonic() - store.down_since
            raise store.unavailable(
                f"{name} is down (for {down_for:.1f}s: {store.reason}); "
                f"not calling it until a probe succeeds"
            )
        epoch = store.epoch
        try:
            result = await self._bounded(store, what, op, writes=writes)
        except store.unavailable as exc:
            await self._mark_down(store, epoch, str(exc))
            raise
        await self._mark_up(store)
        return result

    async def probe(self, name: str) -> bool:
        """Probe store `name` once (whatever its state); whether it answered."""
        store = self._stores[name]
        epoch = store.epoch
        try:
            await self._bounded(store, "probe", store.probe)
        except store.unavailable as exc:
            log.debug("store %s: probe failed: %s", name, exc)
            await self._mark_down(store, epoch, str(exc))
            return False
        except Exception as exc:  # a probe that fails otherwise proves nothing either
            log.warning("store %s: probe raised %r", name, exc)
            await self._mark_down(store, epoch, f"probe raised {exc!r}")
            return False
        await self._mark_up(store)
        return True

    async def probe_down(self) -> None:
        """Probe every store that is down, at once."""
        down = [name for name, store in self._stores.items() if not store.up]
        await asyncio.gather(*(self.probe(name) for name in down))

    async def watch(self) -> None:
        """Probe the down stores every `probe_interval_s`, forever (run it as a task)."""
        while True:
            await asyncio.sleep(self._probe_interval_s)
            await self.probe_down()

    async def drain(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for timed-out calls still unwinding; how many remain."""
        pending = set(self._background)
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        return sum(not task.done() for task in pending)

    async def _bounded(
        self, store: _Store, what: str, op: Callable[[], Awaitable[T]], *, writes: bool = False
    ) -> T:
        task: asyncio.Task[T] = asyncio.create_task(_run(op))
        try:
            while True:
                try:
                    async with asyncio.timeout(store.timeout_s):
                        # Shielded: on timeout only this wait is cancelled, and it
                        # returns now instead of when the store's client has unwound.
                        return await asyncio.shield(task)
                except TimeoutError:
                    if task.done() or not store.busy():
                        raise
                    # Late but the store is working through others: wait on.
        except TimeoutError as exc:
            self._abandon(task, store.name, what)
            if task.done() and not task.cancelled() and task.exception() is None:
                return task.result()  # finished in the same instant: keep the answer
            caveat = "; it may still have committed, so it is not retried" if writes else ""
            raise store.unavailable(
                f"{store.name} did not answer within {store.timeout_s:g}s ({what}{caveat})"
            ) from exc
        except BaseException:  # the caller was cancelled, or op failed
            self._abandon(task, store.name, what)
            raise

    def _abandon(self, task: asyncio.Task[Any], name: str, what: str) -> None:
        """Cancel `task` if still running and let it unwind without us."""
        if task.done():
            return
        task.cancel()
        self._background.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            self._background.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.debug("store %s: abandoned %s ended with %r", name, what, done.exception())

        task.add_done_callback(finished)

    async def _mark_down(self, store: _Store, epoch: int, reason: str) -> None:
        if store.epoch != epoch:
            return  # the store came back after this call started: stale news
        if store.up:
            store.up = False
            store.down_since = time.monotonic()
            log.error(
                "store %s is down: %s; failing its calls fast, probing every %gs",
                store.name,
                reason,
                self._probe_interval_s,
            )
        store.reason = reason
        await self._changed()

    async def _mark_up(self, store: _Store) -> None:
        if store.up:
            return
        store.up = True
        store.epoch += 1
        down_for = time.monotonic() - store.down_since
        log.warning("store %s is back after %.1fs", store.name, down_for)
        await self._changed()

    async def _changed(self) -> None:
        """Report the overall state if it differs from the last report.

        Reports run one at a time and each reads the state when it runs, so
        the last one always tells the current state. The report is its own
        task: a caller cancelled meanwhile does not cut it short.
        """
        if self._on_change is None or self.all_up == self._reported:
            return
        task = asyncio.create_task(self._report())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        await asyncio.shield(task)

    async def _report(self) -> None:
        assert self._on_change is not None
        async with self._notify_lock:
            all_up = self.all_up
            if all_up == self._reported:
                return
            self._reported = all_up
            try:
                await self._on_change(all_up)
            except Exception:
                log.exception("store health: on_change(%s) failed", all_up)


async def _run(op: Callable[[], Awaitable[T]]) -> T:
    return await op()


async def close_within(
    close: Callable[[], Awaitable[None]], name: str, timeout_s: float, error: type[Exception]
) -> None:
    """Await `close()` for at most `timeout_s` (it is cancelled then), else raise `error`.

    Not a store call: it runs whether the store is up or down and changes
    nothing in `StoreHealth`.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await close()
    except TimeoutError as exc:
        raise error(f"{name} did not close within {timeout_s:g}s") from exc
