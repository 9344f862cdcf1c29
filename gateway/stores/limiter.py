"""`TimedLimiter`: any `Limiter`, every call bounded in time and reported to `StoreHealth`.

A call that does not answer within `timeout_s` raises `LimiterUnavailable`
(a `GatewayError` with status UNAVAILABLE, the error `RedisLimiter` raises for
an unreachable Redis); while the limiter is down calls raise it at once.
A timed-out `acquire` / `acquire_slot` may still have charged the quota or
taken a slot: it is not retried (a slot lease expires by itself).

`start()` is delegated as is; `close()` is bounded but never fails fast.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.limits import (
    Limiter,
    LimiterUnavailable,
    RateDecision,
    RateLimit,
    RateRequest,
    SlotDecision,
)
from gateway.stores.health import StoreHealth, close_within

LIMITER = "limiter"
# A read of one counter nobody uses: `peek` consumes nothing.
PROBE_REQUEST = RateRequest(key="__probe__", limit=RateLimit(limit=1, period_s=1.0), name="probe")


class TimedLimiter:
    """A `Limiter` that delegates to `limiter`, each call within `timeout_s`."""

    def __init__(
        self, limiter: Limiter, health: StoreHealth, timeout_s: float, *, name: str = LIMITER
    ) -> None:
        self._limiter = limiter
        self._health = health
        self._name = name
        self._timeout_s = timeout_s
        health.add(name, timeout_s=timeout_s, probe=self._probe, unavailable=LimiterUnavailable)

    @property
    def inner(self) -> Limiter:
        """The limiter this one delegates to."""
        return self._limiter

    async def _probe(self) -> None:
        await self._limiter.peek(PROBE_REQUEST)

    async def start(self) -> None:
        await self._limiter.start()

    async def close(self) -> None:
        await close_within(self._limiter.close, self._name, self._timeout_s, LimiterUnavailable)

    async def acquire(self, requests: Sequence[RateRequest]) -> RateDecision:
        return await self._health.call(
            self._name, "acquire", lambda: self._limiter.acquire(requests), writes=True
        )

    async def acquire_slot(self, key: str, max_slots: int, *, lease_s: float) -> SlotDecision:
        return await self._health.call(
            self._name,
            "acquire_slot",
            lambda: self._limiter.acquire_slot(key, max_slots, lease_s=lease_s),
            writes=True,
        )

    async def release_slot(self, key: str, slot_id: str) -> None:
        await self._health.call(
            self._name, "release_slot", lambda: self._limiter.release_slot(key, slot_id)
        )

    async def renew_slot(self, key: str, slot_id: str, *, lease_s: float) -> bool:
        return await self._health.call(
            self._name,
            "renew_slot",
            lambda: self._limiter.renew_slot(key, slot_id, lease_s=lease_s),
        )

    async def peek(self, request: RateRequest) -> float:
        return await self._health.call(self._name, "peek", lambda: self._limiter.peek(request))
