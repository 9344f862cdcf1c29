"""GCRA's guarantees, on the pure functions and on MemoryLimiter's fake clock.

Why not fixed windows: a fixed window resets its count at each window edge,
so a tenant can spend a full allowance just before the edge and another just
after it. These tests show GCRA refusing exactly that, and prove its bound on
random traffic: any span of `s` seconds admits at most `burst + s / interval`.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.limits import MemoryLimiter, RateLimit, RateRequest, gcra
from gateway.limits.memory import SWEEP_EVERY_S
from tests.limits.conftest import FakeClock

PER_MINUTE = RateLimit(limit=100, period_s=60.0)  # interval 0.6 s
TENANT = RateRequest(key="tenant:a:ipm", limit=PER_MINUTE, name="images_per_minute")


def burst(cost: int) -> RateRequest:
    return RateRequest(key=TENANT.key, limit=PER_MINUTE, cost=cost, name=TENANT.name)


class FixedWindow:
    """What GCRA replaces: a counter per calendar window (for contrast only)."""

    def __init__(self, limit: int, period_s: float) -> None:
        self.limit, self.period_s = limit, period_s
        self.counts: dict[int, int] = {}

    def acquire(self, now: float, cost: int) -> bool:
        window = math.floor(now / self.period_s)
        if self.counts.get(window, 0) + cost > self.limit:
            return False
        self.counts[window] = self.counts.get(window, 0) + cost
        return True


async def test_second_full_burst_within_the_period_is_refused() -> None:
    clock = FakeClock(now=0.0)
    limiter = MemoryLimiter(clock)
    assert (await limiter.acquire([burst(100)])).allowed
    clock.now = 59.9
    decision = await limiter.acquire([burst(100)])
    assert not decision.allowed
    assert decision.retry_after_s == pytest.approx(0.1)
    # What refilled meanwhile (one unit per 0.6 s) is all that is left.
    assert await limiter.peek(TENANT) == pytest.approx(59.9 / 0.6)


async def test_no_double_burst_across_a_window_edge() -> None:
    clock = FakeClock(now=59.9)
    limiter, window = MemoryLimiter(clock), FixedWindow(limit=100, period_s=60.0)
    assert (await limiter.acquire([burst(100)])).allowed
    assert window.acquire(59.9, 100)
    clock.now = 60.1
    # The fixed window has reset at 60.0 and lets a second full burst through...
    assert window.acquire(60.1, 100)
    # ...GCRA has refilled 0.2 s worth, less than one unit.
    assert not (await limiter.acquire([burst(1)])).allowed
    assert await limiter.peek(TENANT) == pytest.approx(0.2 / 0.6)


async def test_idle_keys_are_forgotten() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    await limiter.acquire([burst(100)])
    await limiter.acquire_slot("tenant:a:concurrent", 1, lease_s=30)
    assert limiter.key_count == 2
    clock.now += SWEEP_EVERY_S + 1  # past the TAT, the lease and the next sweep
    await limiter.acquire([RateRequest(key="tenant:b:rpm", limit=PER_MINUTE)])
    assert limiter.key_count == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0, "period_s": 1.0}, "limit"),
        ({"limit": 1, "period_s": 0.0}, "period_s"),
        ({"limit": 1, "period_s": math.nan}, "period_s"),
        ({"limit": 1, "period_s": 1.0, "burst": 0}, "burst"),
    ],
)
def test_bad_rate_limits_raise(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_bad_requests_raise() -> None:
    with pytest.raises(ValueError, match="cost"):
        RateRequest(key="k", limit=PER_MINUTE, cost=-1)
    with pytest.raises(ValueError, match="key"):
        RateRequest(key="", limit=PER_MINUTE)


limits = st.builds(
    RateLimit,
    limit=st.integers(1, 20),
    period_s=st.floats(0.1, 100.0),
    burst=st.none() | st.integers(1, 20),
)
arrivals = st.lists(st.tuples(st.floats(0.0, 5.0), st.integers(0, 6)), max_size=60)


def simulate(limit: RateLimit, traffic: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Feed (gap, cost) arrivals to gcra.check; return the admitted (time, cost)."""
    tat, now, admitted = None, 1000.0, []
    for gap, cost in traffic:
        now += gap
        verdict = gcra.check(tat, now, limit, cost)
        if verdict.allowed:
            tat = verdict.tat
            admitted.append((now, cost))
    return admitted


@settings(deadline=None)
@given(limits, arrivals)
def test_any_span_admits_at_most_burst_plus_refill(
    limit: RateLimit, traffic: list[tuple[float, int]]
) -> None:
    admitted = simulate(limit, traffic)
    for i, (start, _) in enumerate(admitted):
        units = 0
        for end, cost in admitted[i:]:
            units += cost
            bound = limit.capacity + (end - start + gcra.TOLERANCE_S) / limit.interval_s
            assert units <= bound + 1e-9


@settings(deadline=None)
@given(limits, arrivals, st.integers(1, 20))
def test_waiting_the_returned_wait_admits(
    limit: RateLimit, traffic: list[tuple[float, int]], cost: int
) -> None:
    tat, now = None, 1000.0
    for gap, units in traffic:
        now += gap
        verdict = gcra.check(tat, now, limit, units)
        tat = verdict.tat if verdict.allowed else tat
    verdict = gcra.check(tat, now, limit, cost)
    if cost > limit.capacity:
        assert not verdict.allowed
    elif not verdict.allowed:
        assert gcra.check(tat, now + verdict.wait, limit, cost).allowed
        assert not gcra.check(tat, now + verdict.wait * 0.99 - 2e-6, limit, cost).allowed
