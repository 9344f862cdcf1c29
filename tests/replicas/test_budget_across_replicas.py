"""Three replicas on one PostgreSQL ledger and one Redis: a burst of 300
concurrent requests spread over all of them buys exactly what the budget
covers, and a per-minute rate limit admits exactly its quota, whichever
replica each request lands on."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2

from gateway.ledger import BudgetLimit, BudgetState, Ledger, Period
from tests.replicas.harness import (
    Replicas,
    TenantSpec,
    channel,
    describe,
    fresh_database,
    generate,
    image_service,
    ledger_client,
    redis_prefix,
    replicas,
    stores_env,
    text_to_image,
    write_policy,
)
from tests.streams import StreamResult, find_detail

pytestmark = pytest.mark.asyncio(loop_scope="module")

PRICE = 8_000  # Titan v2 (the default model), 512x512, standard: $0.008
REQUESTS = 300
REPLICAS = 3
BURST_KEY = "tgw_replicas_burst_key"
BURST_IMAGES = 50
BURST_LIMIT = BURST_IMAGES * PRICE  # total_usd: 0.40
RATEY_KEY = "tgw_replicas_ratey_key"
RATEY_RPM = 20
TEST_TIMEOUT_S = 55.0
READY_TIMEOUT_S = 10.0
BUDGET_KEYS = {"period", "remaining_micros", "limit_micros", "resets_at"}

Outcome = StreamResult | grpc.aio.AioRpcError


@dataclass
class Cluster:
    """Three running replicas and the test's own connection to their ledger."""

    addresses: Replicas
    ledger: Ledger


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    workdir = tmp_path_factory.mktemp("budget-across-replicas")
    policy = write_policy(
        workdir / "policy.yaml",
        {
            "burst": TenantSpec(key=BURST_KEY, budget={"total_usd": 0.40}),
            "ratey": TenantSpec(key=RATEY_KEY, quotas={"requests_per_minute": RATEY_RPM}),
        },
    )
    async with (
        fresh_database() as ledger_url,
        redis_prefix() as prefix,
        ledger_client(ledger_url) as ledger,
        replicas(REPLICAS, stores_env(ledger_url, prefix, policy), workdir=workdir) as addresses,
    ):
        yield Cluster(addresses, ledger)


async def burst(addresses: Replicas, key: str, count: int) -> list[tuple[int, Outcome]]:
    """`count` concurrent one-image requests, round-robin over the replicas.

    One channel per replica, connected before the first request so that the
    requests really race. Returns (replica index, outcome) per request.
    """
    async with contextlib.AsyncExitStack() as stack:
        channels = [await stack.enter_async_context(channel(a, key)) for a in addresses]
        async with asyncio.timeout(READY_TIMEOUT_S):
            await asyncio.gather(*(ch.channel_ready() for ch in channels))
        stubs = [image_service(ch) for ch in channels]
        results = await asyncio.gather(
            *(generate(stubs[i % len(stubs)], text_to_image(seed=i + 1)) for i in range(count)),
            return_exceptions=True,
        )
    outcomes: list[tuple[int, Outcome]] = []
    for i, result in enumerate(results):
        if isinstance(result, BaseException) and not isinstance(result, grpc.aio.AioRpcError):
            raise result
        outcomes.append((i % len(addresses), result))
    return outcomes


def split(
    outcomes: list[tuple[int, Outcome]],
) -> tuple[list[StreamResult], list[grpc.aio.AioRpcError]]:
    delivered = [r for _, r in outcomes if isinstance(r, StreamResult)]
    refused = [r for _, r in outcomes if isinstance(r, grpc.aio.AioRpcError)]
    return delivered, refused


def tally(outcomes: list[tuple[int, Outcome]]) -> str:
    """Per replica: delivered / each error code, for assertion messages."""
    counts: Counter[str] = Counter()
    for replica, r in outcomes:
        kind = "ok" if isinstance(r, StreamResult) else r.code().name
        counts[f"replica {replica} {kind}"] += 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def budget_refusal_problem(err: grpc.aio.AioRpcError) -> str | None:
    """Why `err` is not a proper total-budget refusal (None if it is one)."""
    if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return f"expected FAILED_PRECONDITION, got {describe(err)}"
    info = find_detail(err, error_details_pb2.ErrorInfo)
    if info is None or info.reason != "BUDGET_EXHAUSTED":
        return f"no ErrorInfo BUDGET_EXHAUSTED: {describe(err)}"
    metadata = dict(info.metadata)
    if missing := BUDGET_KEYS - metadata.keys():
        return f"ErrorInfo metadata {sorted(metadata)} lacks {sorted(missing)}"
    expected = {"period": "total", "limit_micros": str(BURST_LIMIT), "resets_at": ""}
    if {k: metadata[k] for k in expected} != expected:
        return f"ErrorInfo metadata {metadata}, expected {expected}"
    if not 0 <= int(metadata["remaining_micros"]) < PRICE:
        return f"refused with {metadata['remaining_micros']} micro-USD remaining (price {PRICE})"
    return None


def rate_refusal_problem(err: grpc.aio.AioRpcError, tenant: str) -> str | None:
    """Why `err` is not a proper requests_per_minute refusal (None if it is one)."""
    if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return f"expected RESOURCE_EXHAUSTED, got {describe(err)}"
    failure = find_detail(err, error_details_pb2.QuotaFailure)
    if failure is None or not failure.violations:
        return f"no QuotaFailure violation: {describe(err)}"
    violation = failure.violations[0]
    if violation.subject != f"tenant:{tenant}":
        return f"QuotaFailure subject {violation.subject!r}, expected 'tenant:{tenant}'"
    if not violation.description.startswith("requests_per_minute"):
        return f"QuotaFailure description {violation.description!r} names another quota"
    retry = find_detail(err, error_details_pb2.RetryInfo)
    if retry is None:
        return f"no RetryInfo: {describe(err)}"
    if retry.retry_delay.ToTimedelta().total_seconds() <= 0:
        return f"RetryInfo delay {retry.retry_delay} is not positive"
    return None


@dataclass
class BudgetWatch:
    """Samples the ledger while a burst runs: spent and spent + reserved, at most."""

    ledger: Ledger
    tenant: str
    limits: list[BudgetLimit]
    samples: int = 0
    worst: dict[Period, tuple[int, int]] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self.stop.is_set():
            states = await asyncio.wait_for(
                self.ledger.budgets(self.tenant, self.limits, now=datetime.now(UTC)), 5
            )
            self.samples += 1
            for s in states:
                spent, held = self.worst.get(s.period, (0, 0))
                self.worst[s.period] = (
                    max(spent, s.spent_micros),
                    max(held, s.spent_micros + s.reserved_micros),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.02)


async def states_once_released(
    ledger: Ledger, tenant: str, limits: list[BudgetLimit], within_s: float = 2.0
) -> list[BudgetState]:
    """The budget states once no reservation is held (or the last read after `within_s`).

    Every stream releases its reservation before its status reaches the
    client, far sooner than a lease (30 s) could expire it; the short grace
    only absorbs a release that lands a moment after the trailers.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        states = await ledger.budgets(tenant, limits, now=datetime.now(UTC))
        if all(s.reserved_micros == 0 for s in states) or loop.time() >= deadline:
            return states
        await asyncio.sleep(0.1)


async def test_a_burst_over_three_replicas_buys_exactly_the_budget(cluster: Cluster) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        limits = [BudgetLimit(period, BURST_LIMIT) for period in Period]
        started = datetime.now(UTC)
        watch = BudgetWatch(cluster.ledger, "burst", limits)
        watcher = asyncio.create_task(watch.run())
        try:
            outcomes = await burst(cluster.addresses, BURST_KEY, REQUESTS)
        finally:
            watch.stop.set()
            await watcher
        delivered, refused = split(outcomes)
        summary = f"{tally(outcomes)}\n{cluster.addresses.logs()}"

        problems = Counter(p for e in refused if (p := budget_refusal_problem(e)))
        assert not problems, f"wrong refusals: {problems.most_common(5)}; {summary}"
        counts = (len(delivered), len(refused))
        assert counts == (BURST_IMAGES, REQUESTS - BURST_IMAGES), f"delivered, refused; {summary}"
        for result in delivered:
            assert len(result.images) == 1, result.events
            assert not result.failures, result.failures

        assert await cluster.ledger.settled_total("burst") == BURST_IMAGES * PRICE
        usage = await cluster.ledger.recent_usage("burst", limit=REQUESTS)
        assert len(usage) == BURST_IMAGES
        assert {u.cost_micros for u in usage} == {PRICE}
        assert len({(u.request_id, u.image_index) for u in usage}) == BURST_IMAGES

        # Never above the limit while the burst ran, nor after it.
        assert watch.samples > 0
        for period, (spent, held) in watch.worst.items():
            assert spent <= BURST_LIMIT, (period, spent)
            assert held <= BURST_LIMIT, (period, held)
        states = await states_once_released(cluster.ledger, "burst", limits)
        assert {s.period for s in states} == set(Period)
        for state in states:
            assert state.reserved_micros == 0, state
            assert state.spent_micros <= state.limit_micros, state
            if state.window_start <= started:  # the window held the whole burst
                assert state.spent_micros == BURST_LIMIT, state
                assert state.remaining_micros == 0, state


async def test_a_rate_limit_holds_across_three_replicas(cluster: Cluster) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        loop = asyncio.get_running_loop()
        began = loop.time()
        outcomes = await burst(cluster.addresses, RATEY_KEY, REQUESTS)
        took = loop.time() - began
        delivered, refused = split(outcomes)
        # 20 per minute refills one request every 3 s: a slower burst could
        # rightly admit a 21st, so say how long it took.
        summary = f"burst took {took:.2f}s; {tally(outcomes)}\n{cluster.addresses.logs()}"

        problems = Counter(p for e in refused if (p := rate_refusal_problem(e, "ratey")))
        assert not problems, f"wrong refusals: {problems.most_common(5)}; {summary}"
        # GCRA: the full burst of 20 at once, then one more per 3 s of burst
        # time. A loaded machine may stretch the burst; the limit may not.
        most = RATEY_RPM + math.floor(took / (60 / RATEY_RPM))
        assert RATEY_RPM <= len(delivered) <= most, f"delivered (max {most}); {summary}"
        assert len(delivered) + len(refused) == REQUESTS, summary
        for result in delivered:
            assert len(result.images) == 1, result.events
        assert await cluster.ledger.settled_total("ratey") == len(delivered) * PRICE
