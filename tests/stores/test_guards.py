"""Store guards against fake stores: bounded calls, fail-fast while down, probe, health flips.

Every wait is bounded: timeouts of 0.05-0.2 s, probes every 0.02-0.05 s, and
`eventually` gives up after 5 s.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway.errors import StoreUnavailable
from gateway.ledger import (
    BudgetExhausted,
    BudgetLimit,
    Ledger,
    LedgerUnavailable,
    Period,
    UsageRecord,
)
from gateway.ledger.sqlite import SqliteLedger
from gateway.limits import Limiter, LimiterUnavailable, RateLimit, RateRequest
from gateway.limits.memory import MemoryLimiter
from gateway.rpc import as_gateway_error
from gateway.stores import (
    LEDGER,
    LIMITER,
    StoreHealth,
    TimedLedger,
    TimedLimiter,
    grpc_health_reporter,
    guard_stores,
)

from .fakes import FaultyStore, Flips, eventually

TIMEOUT_S = 0.1
PROBE_S = 0.03
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LIMITS = [BudgetLimit(Period.DAY, 1_000_000)]
RECORD = UsageRecord(
    tenant="acme",
    request_id="r1",
    image_index=0,
    model="amazon.titan-image-generator-v2:0",
    task="TEXT_IMAGE",
    width=1024,
    height=1024,
    quality="standard",
    cost_micros=40_000,
    image_sha256="0" * 64,
    created_at=NOW,
)
RATE = RateRequest(key="tenant:acme:rpm", limit=RateLimit(10, 60.0), name="requests_per_minute")


class Rig:
    """Fake ledger and limiter behind their guards, sharing one `StoreHealth`."""

    def __init__(self, *, timeout_s: float = TIMEOUT_S, probe_interval_s: float = PROBE_S) -> None:
        self.flips = Flips()
        self.raw_ledger = FaultyStore(LedgerUnavailable)
        self.raw_limiter = FaultyStore(LimiterUnavailable)
        ledger, limiter, self.health = guard_stores(
            cast(Ledger, self.raw_ledger),
            cast(Limiter, self.raw_limiter),
            timeout_s=timeout_s,
            probe_interval_s=probe_interval_s,
            on_change=self.flips,
        )
        self.ledger = cast(TimedLedger, ledger)
        self.limiter = cast(TimedLimiter, limiter)
        self.watcher: asyncio.Task[None] | None = None

    def watch(self) -> None:
        self.watcher = asyncio.create_task(self.health.watch())

    async def stop(self) -> None:
        for store in (self.raw_ledger, self.raw_limiter):
            store.unhang.set()
        if self.watcher is not None:
            self.watcher.cancel()
            await asyncio.gather(self.watcher, return_exceptions=True)
        assert await self.health.drain(2.0) == 0


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    try:
        yield r
    finally:
        await r.stop()


async def reserve(ledger: Ledger) -> Any:
    return await ledger.reserve("acme", "r1", 40_000, LIMITS, now=NOW, lease_s=30.0)


# -- a hung store ----------------------------------------------------------------


async def test_a_hung_ledger_call_fails_within_the_timeout(rig: Rig) -> None:
    rig.raw_ledger.mode = "hang"
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable, match=r"ledger did not answer within 0\.1s \(reserve"):
        await reserve(rig.ledger)
    elapsed = time.monotonic() - started
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + 0.2
    assert rig.raw_ledger.cancelled == ["reserve"]  # the store call was cancelled, not left hanging
    assert not rig.health.is_up(LEDGER)
    assert rig.health.is_up(LIMITER)
    # The call that found the outage returns after health was told.
    assert rig.flips.reports == [False]


async def test_the_error_maps_to_unavailable(rig: Rig) -> None:
    rig.raw_ledger.mode = "hang"
    with pytest.raises(LedgerUnavailable) as caught:
        await rig.ledger.budgets("acme", LIMITS, now=NOW)
    mapped = as_gateway_error(caught.value)
    assert isinstance(mapped, StoreUnavailable)
    assert mapped.code is grpc.StatusCode.UNAVAILABLE

    rig.raw_limiter.mode = "hang"
    with pytest.raises(LimiterUnavailable) as limited:
        await rig.limiter.acquire([RATE])
    assert "limiter did not answer within 0.1s (acquire" in str(limited.value)
    assert as_gateway_error(limited.value).code is grpc.StatusCode.UNAVAILABLE


async def test_a_call_returns_in_time_even_when_the_store_unwinds_slowly(rig: Rig) -> None:
    # asyncpg waits for its cancel request before a cancelled query returns;
    # with the network hung that takes as long as its connect timeout.
    rig.raw_ledger.mode = "hang"
    rig.raw_ledger.unwind_s = 0.5
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable):
        await rig.ledger.budgets("acme", LIMITS, now=NOW)
    assert time.monotonic() - started < TIMEOUT_S + 0.2
    assert await rig.health.drain(0.0) == 1  # still unwinding in the background
    assert await rig.health.drain(2.0) == 0


async def test_a_timed_out_settle_is_reported_and_never_retried(rig: Rig) -> None:
    rig.raw_ledger.mode = "hang"
    with pytest.raises(LedgerUnavailable, match="may still have committed") as caught:
        await rig.ledger.settle("res-1", RECORD, LIMITS)
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert rig.raw_ledger.called("settle") == ["settle"]
    _, args, _ = rig.raw_ledger.calls[0]
    assert args == ("res-1", RECORD, LIMITS)
    # Later calls do not re-send it either.
    with pytest.raises(LedgerUnavailable):
        await rig.ledger.release("res-1")
    assert rig.raw_ledger.called() == ["settle"]


# -- down: fail fast ----------------------------------------------------------------


async def test_while_down_calls_fail_fast_without_touching_the_store(rig: Rig) -> None:
    rig.raw_ledger.mode = "hang"
    with pytest.raises(LedgerUnavailable):
        await reserve(rig.ledger)
    calls = len(rig.raw_ledger.calls)

    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(LedgerUnavailable, match="ledger is down"):
            await reserve(rig.ledger)
        with pytest.raises(LedgerUnavailable, match="ledger is down"):
            await rig.ledger.settle("res-1", RECORD)
    assert time.monotonic() - started < TIMEOUT_S  # 40 calls, none waited on the store
    assert len(rig.raw_ledger.calls) == calls
    # The limiter is unaffected.
    rig.raw_limiter.answers["peek"] = 7.0
    assert await rig.limiter.peek(RATE) == 7.0


async def test_the_stores_unavailability_error_marks_it_down(rig: Rig) -> None:
    rig.raw_limiter.mode = "fail"
    with pytest.raises(LimiterUnavailable, match="acquire_slot: the store is gone"):
        await rig.limiter.acquire_slot("tenant:acme", 2, lease_s=30.0)
    assert not rig.health.is_up(LIMITER)
    assert rig.flips.reports == [False]
    with pytest.raises(LimiterUnavailable, match="limiter is down"):
        await rig.limiter.release_slot("tenant:acme", "slot-1")
    assert rig.raw_limiter.called() == ["acquire_slot"]


async def test_answers_and_refusals_keep_the_store_up(rig: Rig) -> None:
    rig.raw_ledger.answers["top_up"] = 5
    assert await rig.ledger.top_up("acme", Period.DAY, 2, base_limit_micros=3) == 5

    async def exhausted(*args: Any, **kwargs: Any) -> Any:
        raise BudgetExhausted("acme", Period.DAY, 10, 0, None)

    rig.raw_ledger.__dict__["reserve"] = exhausted  # a refusal is an answer
    with pytest.raises(BudgetExhausted):
        await reserve(rig.ledger)
    assert rig.health.all_up
    assert rig.flips.reports == []


async def test_a_cancelled_caller_cancels_the_store_call_and_marks_nothing(rig: Rig) -> None:
    rig.raw_ledger.mode = "hang"
    call = asyncio.create_task(reserve(rig.ledger))
    await eventually(lambda: bool(rig.raw_ledger.calls))
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: rig.raw_ledger.cancelled == ["reserve"])
    assert rig.health.all_up
    assert rig.flips.reports == []


# -- the probe brings it back -------------------------------------------------------


async def test_the_probe_brings_a_store_back(rig: Rig) -> None:
    rig.watch()
    rig.raw_ledger.mode = "hang"
    with pytest.raises(LedgerUnavailable):
        await reserve(rig.ledger)
    # Probes time out while the store hangs: still down, still failing fast.
    await asyncio.sleep(4 * PROBE_S + TIMEOUT_S)
    probes = rig.raw_ledger.called("budgets")
    assert len(probes) >= 2
    assert not rig.health.is_up(LEDGER)
    _, args, kwargs = rig.raw_ledger.calls[-1]
    assert args == ("__probe__", [])
    assert set(kwargs) == {"now"}

    rig.raw_ledger.mode = "ok"
    await eventually(lambda: rig.health.is_up(LEDGER))
    await eventually(lambda: len(rig.flips.reports) == 2)  # reported just after the flip
    assert rig.flips.reports == [False, True]
    rig.raw_ledger.answers["reserve"] = "reservation"
    assert await reserve(rig.ledger) == "reservation"


async def test_the_limiter_probe_is_a_peek(rig: Rig) -> None:
    rig.watch()
    rig.raw_limiter.mode = "fail"
    with pytest.raises(LimiterUnavailable):
        await rig.limiter.acquire([RATE])
    rig.raw_limiter.mode = "ok"
    await eventually(lambda: len(rig.flips.reports) == 2)
    assert rig.health.all_up
    assert rig.raw_limiter.called() == ["acquire", "peek"]
    (probe,) = rig.raw_limiter.calls[1][1]
    assert isinstance(probe, RateRequest)
    assert probe.key == "__probe__"
    assert rig.flips.reports == [False, True]


async def test_health_flips_once_each_way_however_many_calls_fail(rig: Rig) -> None:
    rig.watch()
    rig.raw_ledger.mode = "hang"
    rig.raw_limiter.mode = "hang"
    results = await asyncio.gather(
        *(reserve(rig.ledger) for _ in range(5)),
        *(rig.limiter.acquire([RATE]) for _ in range(5)),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [LedgerUnavailable] * 5 + [LimiterUnavailable] * 5
    assert rig.flips.reports == [False]

    # One store back is not enough: the gateway serves only with both.
    rig.raw_ledger.mode = "ok"
    await eventually(lambda: rig.health.is_up(LEDGER))
    await asyncio.sleep(3 * PROBE_S)
    assert rig.flips.reports == [False]
    assert rig.health.states() == {LEDGER: True, LIMITER: False}

    rig.raw_limiter.mode = "ok"
    await eventually(lambda: rig.health.all_up)
    await eventually(lambda: len(rig.flips.reports) == 2)
    await asyncio.sleep(3 * PROBE_S)
    assert rig.flips.reports == [False, True]


async def test_a_stale_timeout_does_not_take_a_recovered_store_down() -> None:
    rig = Rig(timeout_s=0.2)
    try:
        rig.raw_ledger.mode = "hang"
        slow = asyncio.create_task(reserve(rig.ledger))  # started while up, will time out
        await eventually(lambda: bool(rig.raw_ledger.calls))
        rig.raw_ledger.mode = "fail"
        with pytest.raises(LedgerUnavailable):
            await reserve(rig.ledger)
        rig.raw_ledger.mode = "ok"
        assert await rig.health.probe(LEDGER)
        with pytest.raises(LedgerUnavailable, match="did not answer"):
            await slow  # its news predates the recovery
        assert rig.health.all_up
        assert rig.flips.reports == [False, True]
    finally:
        await rig.stop()


async def test_a_failing_on_change_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(all_up: bool) -> None:
        raise RuntimeError("health servicer gone")

    store = FaultyStore(LedgerUnavailable)
    state = StoreHealth(probe_interval_s=PROBE_S, on_change=broken)
    ledger = TimedLedger(cast(Ledger, store), state, TIMEOUT_S)
    store.mode = "fail"
    with caplog.at_level(logging.ERROR), pytest.raises(LedgerUnavailable):
        await ledger.sweep(now=NOW)
    assert "on_change(False) failed" in caplog.text
    assert not state.all_up


# -- construction and interface -------------------------------------------------------


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="probe_interval_s"):
        StoreHealth(probe_interval_s=0)
    state = StoreHealth(probe_interval_s=1.0)
    with pytest.raises(ValueError, match="timeout_s"):
        TimedLedger(cast(Ledger, FaultyStore(LedgerUnavailable)), state, 0)
    TimedLedger(cast(Ledger, FaultyStore(LedgerUnavailable)), state, 1.0)
    with pytest.raises(ValueError, match="already tracked"):
        TimedLedger(cast(Ledger, FaultyStore(LedgerUnavailable)), state, 1.0)


@pytest.mark.parametrize(("protocol", "guard"), [(Ledger, TimedLedger), (Limiter, TimedLimiter)])
def test_the_guard_has_every_method_of_its_interface(protocol: type, guard: type) -> None:
    """Same names, parameters, defaults and annotations: a method added to the
    interface (or a changed signature) fails here until the guard follows."""
    wanted = {
        name: inspect.signature(member)
        for name, member in vars(protocol).items()
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    }
    assert wanted, protocol
    for name, signature in wanted.items():
        mine = getattr(guard, name, None)
        assert mine is not None, f"{guard.__name__} lacks {name}"
        assert inspect.iscoroutinefunction(mine), name
        assert inspect.signature(mine) == signature, name


async def test_close_is_bounded_and_start_is_delegated(rig: Rig) -> None:
    await rig.ledger.start()
    await rig.limiter.start()
    assert rig.raw_ledger.called() == ["start"]
    rig.raw_ledger.mode = "hang"
    rig.raw_limiter.mode = "hang"
    with pytest.raises(LedgerUnavailable, match="did not close within"):
        await rig.ledger.close()
    with pytest.raises(LimiterUnavailable, match="did not close within"):
        await rig.limiter.close()
    assert rig.health.all_up  # closing is not a health signal


# -- gRPC health, wired the way the server wires it --------------------------------------


async def test_grpc_health_follows_the_stores() -> None:
    services = ("", "titan.gateway.v1.ImageService", "titan.gateway.v1.UsageService")
    servicer = health.aio.HealthServicer()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    raw_ledger = FaultyStore(LedgerUnavailable)
    raw_limiter = FaultyStore(LimiterUnavailable)
    reporter = grpc_health_reporter(servicer, services)
    reported: list[bool] = []

    async def on_change(all_up: bool) -> None:
        await reporter(all_up)
        reported.append(all_up)

    ledger, _, state = guard_stores(
        cast(Ledger, raw_ledger),
        cast(Limiter, raw_limiter),
        timeout_s=TIMEOUT_S,
        probe_interval_s=PROBE_S,
        on_change=on_change,
    )
    watcher = asyncio.create_task(state.watch())
    serving = health_pb2.HealthCheckResponse.SERVING
    for name in services:
        await servicer.set(name, serving)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            async def statuses() -> list[int]:
                replies = [
                    await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                    for name in services
                ]
                return [reply.status for reply in replies]

            assert await statuses() == [serving] * len(services)
            raw_ledger.mode = "hang"
            with pytest.raises(LedgerUnavailable):
                await ledger.settle("res-1", RECORD)
            not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
            assert await statuses() == [not_serving] * len(services)

            raw_ledger.mode = "ok"
            await eventually(lambda: reported == [False, True])
            assert await statuses() == [serving] * len(services)
    finally:
        raw_ledger.unhang.set()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await server.stop(0)


async def test_a_call_queued_behind_a_busy_store_waits_and_a_stalled_one_fails() -> None:
    """Late because the store is working through others (it keeps finishing
    work): the call waits on and the store stays up. Late with no progress at
    all: an outage, as before."""
    health = StoreHealth(probe_interval_s=60)
    last = {"at": time.monotonic()}
    health.add(
        LEDGER, timeout_s=0.1, probe=asyncio.sleep, unavailable=LedgerUnavailable,
        progress=lambda: last["at"],
    )  # fmt: skip

    async def busy_store() -> None:  # finishes other work every 20 ms for 0.5 s
        for _ in range(25):
            await asyncio.sleep(0.02)
            last["at"] = time.monotonic()

    async def queued() -> str:
        await asyncio.sleep(0.45)  # five timeouts' worth behind the others
        return "done"

    worker = asyncio.create_task(busy_store())
    assert await health.call(LEDGER, "reserve", queued) == "done"
    await worker
    assert health.is_up(LEDGER)

    async def stalled() -> str:
        await asyncio.sleep(10)
        return "never"

    with pytest.raises(LedgerUnavailable, match=r"did not answer within 0\.1s"):
        await health.call(LEDGER, "reserve", stalled)
    assert not health.is_up(LEDGER)


async def test_the_sqlite_ledger_tells_a_deep_queue_from_a_hang(tmp_path) -> None:
    """The embedded ledger's writer reports its progress to the guard."""
    raw = SqliteLedger(tmp_path / "ledger.db")
    await raw.start()
    try:
        before = raw.progress()
        assert before is not None
        await raw.recent_usage(None)
        after = raw.progress()
        assert after is not None
        assert after >= before
    finally:
        await raw.close()
    assert raw.progress() is None


async def test_the_in_process_limiter_is_not_guarded() -> None:
    """It cannot hang or go down, so no timeout, task or health state is spent
    on its calls; a limiter across the network is guarded (the rig above)."""
    memory = MemoryLimiter()
    _, limiter, _ = guard_stores(
        cast(Ledger, FaultyStore(LedgerUnavailable)), memory, timeout_s=1, probe_interval_s=1
    )
    assert limiter is memory
    assert (await limiter.acquire([RATE])).allowed
