"""The `Limiter` contract, run against MemoryLimiter and RedisLimiter alike."""

from __future__ import annotations

import asyncio
import math

import pytest

from gateway.limits import RateDecision, RateLimit, RateRequest
from tests.limits.conftest import Harness

FIVE_PER_SECOND = RateLimit(limit=5, period_s=1.0)  # one unit refills every 0.2 s
SLOW = RateLimit(limit=10, period_s=10.0)  # one unit per second: no refill mid-test


def rpm(
    key: str = "tenant:a:rpm", limit: RateLimit = FIVE_PER_SECOND, cost: int = 1
) -> RateRequest:
    return RateRequest(key=key, limit=limit, cost=cost, name=key.rsplit(":", 1)[-1])


def assert_wait(decision: RateDecision, expected: float, h: Harness) -> None:
    """Refused, and told to wait `expected` s (less the time that passed meanwhile)."""
    assert not decision.allowed
    assert expected - h.slack - 1e-9 <= decision.retry_after_s <= expected + 1e-6


async def admitted(h: Harness, request: RateRequest, attempts: int) -> int:
    count = 0
    for _ in range(attempts):
        count += (await h.limiter.acquire([request])).allowed
    return count


# --- rates ------------------------------------------------------------------


async def test_burst_up_to_the_limit_then_refused(harness: Harness) -> None:
    assert await admitted(harness, rpm(), attempts=5) == 5
    decision = await harness.limiter.acquire([rpm()])
    assert decision.refused == rpm()
    assert_wait(decision, 0.2, harness)


async def test_explicit_burst_smaller_than_limit(harness: Harness) -> None:
    request = rpm(limit=RateLimit(limit=10, period_s=10.0, burst=2))
    assert await admitted(harness, request, attempts=4) == 2
    assert_wait(await harness.limiter.acquire([request]), 1.0, harness)


async def test_refills_smoothly_one_unit_per_interval(harness: Harness) -> None:
    await admitted(harness, rpm(), attempts=5)
    refused = await harness.limiter.acquire([rpm()])
    await harness.wait(refused.retry_after_s)
    assert (await harness.limiter.acquire([rpm()])).allowed
    assert_wait(await harness.limiter.acquire([rpm()]), 0.2, harness)


async def test_cost_counts_several_units(harness: Harness) -> None:
    images = rpm("tenant:a:ipm", limit=SLOW, cost=4)
    assert (await harness.limiter.acquire([images])).allowed
    assert (await harness.limiter.acquire([images])).allowed
    assert_wait(await harness.limiter.acquire([images]), 2.0, harness)  # 2 left, 4 asked
    assert (await harness.limiter.acquire([rpm("tenant:a:ipm", SLOW, cost=2)])).allowed
    assert not (await harness.limiter.acquire([rpm("tenant:a:ipm", SLOW)])).allowed


async def test_cost_above_burst_is_never_admitted_and_charges_nothing(harness: Harness) -> None:
    limit = RateLimit(limit=5, period_s=10.0, burst=3)
    too_big = rpm(limit=limit, cost=4)
    decision = await harness.limiter.acquire([too_big])
    assert decision == RateDecision(allowed=False, refused=too_big, retry_after_s=math.inf)
    assert (await harness.limiter.acquire([rpm(limit=limit, cost=3)])).allowed


async def test_zero_cost_is_admitted_even_when_exhausted(harness: Harness) -> None:
    await harness.limiter.acquire([rpm(limit=SLOW, cost=10)])
    assert (await harness.limiter.acquire([rpm(limit=SLOW, cost=0)])).allowed


async def test_keys_are_independent(harness: Harness) -> None:
    await harness.limiter.acquire([rpm("tenant:a:rpm", SLOW, cost=10)])
    assert (await harness.limiter.acquire([rpm("tenant:b:rpm", SLOW, cost=10)])).allowed


async def test_multi_limit_is_all_or_nothing(harness: Harness) -> None:
    requests_ = rpm("tenant:a:rpm", SLOW, cost=1)
    images = rpm("global:ipm", RateLimit(limit=2, period_s=10.0), cost=1)
    assert (await harness.limiter.acquire([images, images])).allowed  # repeated key: cumulative
    decision = await harness.limiter.acquire([requests_, images])
    assert decision.refused == images
    assert decision.refused.name == "ipm"
    assert_wait(decision, 5.0, harness)
    # The admitting limit was not charged: its whole burst is still there.
    assert await harness.limiter.peek(requests_) == pytest.approx(10, abs=0.05)
    assert (await harness.limiter.acquire([rpm("tenant:a:rpm", SLOW, cost=10)])).allowed


async def test_refusal_names_the_limit_with_the_longest_wait(harness: Harness) -> None:
    short = rpm("tenant:a:rpm", SLOW, cost=10)
    long = rpm("tenant:a:ipd", RateLimit(limit=10, period_s=100.0), cost=10)
    assert (await harness.limiter.acquire([short, long])).allowed
    decision = await harness.limiter.acquire([rpm("tenant:a:rpm", SLOW), rpm(long.key, long.limit)])
    assert decision.refused == rpm(long.key, long.limit)
    assert_wait(decision, 10.0, harness)


async def test_empty_request_list_is_admitted(harness: Harness) -> None:
    assert (await harness.limiter.acquire([])).allowed


async def test_peek_reports_units_without_consuming(harness: Harness) -> None:
    request = rpm(limit=SLOW)
    assert await harness.limiter.peek(request) == 10
    await harness.limiter.acquire([rpm(limit=SLOW, cost=4)])
    assert await harness.limiter.peek(request) == pytest.approx(6, abs=0.05)
    assert await harness.limiter.peek(request) == pytest.approx(6, abs=0.05)
    assert (await harness.limiter.acquire([rpm(limit=SLOW, cost=6)])).allowed
    assert await harness.limiter.peek(request) == pytest.approx(0, abs=0.05)


async def test_concurrent_acquires_admit_exactly_the_burst(harness: Harness) -> None:
    request = rpm(limit=RateLimit(limit=20, period_s=60.0))
    decisions = await asyncio.gather(*(harness.limiter.acquire([request]) for _ in range(100)))
    assert sum(d.allowed for d in decisions) == 20


# --- slots ------------------------------------------------------------------

SLOTS = "tenant:a:concurrent"


async def test_slots_refused_at_max_until_one_is_released(harness: Harness) -> None:
    first = await harness.limiter.acquire_slot(SLOTS, 2, lease_s=30)
    second = await harness.limiter.acquire_slot(SLOTS, 2, lease_s=30)
    assert first.allowed
    assert second.allowed
    assert first.slot_id != second.slot_id
    refused = await harness.limiter.acquire_slot(SLOTS, 2, lease_s=30)
    assert not refused.allowed
    assert refused.slot_id is None
    assert 30 - harness.slack - 0.01 <= refused.retry_after_s <= 30
    assert first.slot_id is not None
    await harness.limiter.release_slot(SLOTS, first.slot_id)
    assert (await harness.limiter.acquire_slot(SLOTS, 2, lease_s=30)).allowed


async def test_release_is_idempotent(harness: Harness) -> None:
    slot = await harness.limiter.acquire_slot(SLOTS, 1, lease_s=30)
    assert slot.slot_id is not None
    await harness.limiter.release_slot(SLOTS, slot.slot_id)
    await harness.limiter.release_slot(SLOTS, slot.slot_id)
    await harness.limiter.release_slot(SLOTS, "never-issued")
    await harness.limiter.release_slot("tenant:unknown:concurrent", "never-issued")
    assert (await harness.limiter.acquire_slot(SLOTS, 1, lease_s=30)).allowed
    assert not (await harness.limiter.acquire_slot(SLOTS, 1, lease_s=30)).allowed


async def test_unrenewed_slot_expires_after_its_lease(harness: Harness) -> None:
    lost = await harness.limiter.acquire_slot(SLOTS, 1, lease_s=0.3)
    assert lost.slot_id is not None
    assert not (await harness.limiter.acquire_slot(SLOTS, 1, lease_s=0.3)).allowed
    await harness.wait(0.35)
    assert (await harness.limiter.acquire_slot(SLOTS, 1, lease_s=0.3)).allowed
    assert not await harness.limiter.renew_slot(SLOTS, lost.slot_id, lease_s=0.3)


async def test_renewed_slot_outlives_its_first_lease(harness: Harness) -> None:
    slot = await harness.limiter.acquire_slot(SLOTS, 1, lease_s=0.3)
    assert slot.slot_id is not None
    await harness.wait(0.2)
    assert await harness.limiter.renew_slot(SLOTS, slot.slot_id, lease_s=0.3)
    await harness.wait(0.2)  # 0.4 s after taking it, 0.2 s after renewing
    assert not (await harness.limiter.acquire_slot(SLOTS, 1, lease_s=0.3)).allowed
    await harness.limiter.release_slot(SLOTS, slot.slot_id)
    assert (await harness.limiter.acquire_slot(SLOTS, 1, lease_s=0.3)).allowed


async def test_renew_of_unknown_or_released_slot_is_refused(harness: Harness) -> None:
    assert not await harness.limiter.renew_slot(SLOTS, "never-issued", lease_s=1)
    slot = await harness.limiter.acquire_slot(SLOTS, 1, lease_s=30)
    assert slot.slot_id is not None
    await harness.limiter.release_slot(SLOTS, slot.slot_id)
    assert not await harness.limiter.renew_slot(SLOTS, slot.slot_id, lease_s=30)


async def test_concurrent_slot_acquires_admit_exactly_max(harness: Harness) -> None:
    decisions = await asyncio.gather(
        *(harness.limiter.acquire_slot(SLOTS, 5, lease_s=30) for _ in range(40))
    )
    assert sum(d.allowed for d in decisions) == 5


@pytest.mark.parametrize(("max_slots", "lease_s"), [(0, 1.0), (1, 0.0), (1, math.inf)])
async def test_bad_slot_arguments_raise(harness: Harness, max_slots: int, lease_s: float) -> None:
    with pytest.raises(ValueError, match=r"max_slots|lease_s"):
        await harness.limiter.acquire_slot(SLOTS, max_slots, lease_s=lease_s)
