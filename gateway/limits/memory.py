"""In-process limiter for a single replica (and the fake beside the Redis one).

Every check runs without an `await`, so on one event loop it is atomic: no
other coroutine can interleave between reading and writing a counter. State
lives in this process only; with several replicas use `RedisLimiter`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

from gateway.limits import gcra
from gateway.limits.base import (
    RateDecision,
    RateRequest,
    SlotDecision,
    check_slot_args,
    never_admitted,
)

# How often (in clock seconds) rested keys and empty slot sets are dropped, so
# idle tenants cost no memory; sweeping is O(keys), hence not on every call.
SWEEP_EVERY_S = 60.0


class MemoryLimiter:
    """GCRA rates and leased slots in dicts, timed by an injectable clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._next_sweep = clock() + SWEEP_EVERY_S

    @property
    def key_count(self) -> int:
        """Keys holding state (rate counters plus slot sets), for tests and metrics."""
        return len(self._tats) + len(self._slots)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        self._tats.clear()
        self._slots.clear()

    async def acquire(self, requests: Sequence[RateRequest]) -> RateDecision:
        impossible = never_admitted(requests)
        if impossible is not None:
            return impossible
        now = self._now()
        pending: dict[str, float] = {}
        worst: tuple[RateRequest, float] | None = None
        for request in requests:
            tat = pending.get(request.key, self._tats.get(request.key))
            verdict = gcra.check(tat, now, request.limit, request.cost)
            if verdict.allowed:
                pending[request.key] = verdict.tat
            elif worst is None or verdict.wait > worst[1]:
                worst = (request, verdict.wait)
        if worst is not None:
            return RateDecision(allowed=False, refused=worst[0], retry_after_s=worst[1])
        self._tats.update(pending)
        return RateDecision(allowed=True)

    async def peek(self, request: RateRequest) -> float:
        return gcra.available(self._tats.get(request.key), self._clock(), request.limit)

    async def acquire_slot(self, key: str, max_slots: int, *, lease_s: float) -> SlotDecision:
        check_slot_args(max_slots, lease_s)
        now = self._now()
        held = self._live_slots(key, now)
        if len(held) >= max_slots:
            return SlotDecision(allowed=False, retry_after_s=min(held.values()) - now)
        slot_id = uuid.uuid4().hex
        held[slot_id] = now + lease_s
        self._slots[key] = held
        return SlotDecision(allowed=True, slot_id=slot_id)

    async def release_slot(self, key: str, slot_id: str) -> None:
        held = self._slots.get(key)
        if held is not None:
            held.pop(slot_id, None)

    async def renew_slot(self, key: str, slot_id: str, *, lease_s: float) -> bool:
        check_slot_args(1, lease_s)
        now = self._now()
        held = self._live_slots(key, now)
        if slot_id not in held:
            return False
        held[slot_id] = now + lease_s
        return True

    def _live_slots(self, key: str, now: float) -> dict[str, float]:
        """The key's unexpired leases; expired ones (and emptied keys) are dropped."""
        held = self._slots.pop(key, {})
        live = {slot: expiry for slot, expiry in held.items() if expiry > now}
        if live:
            self._slots[key] = live
        return live

    def _now(self) -> float:
        """Read the clock, sweeping idle state when it is due."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        return now

    def _sweep(self, now: float) -> None:
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        for key in list(self._slots):
            self._live_slots(key, now)
        self._next_sweep = now + SWEEP_EVERY_S
