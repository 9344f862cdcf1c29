"""GCRA, the generic cell rate algorithm, as pure functions of time.

Why GCRA: a fixed window counts per calendar minute, so a tenant can spend a
full minute's allowance at 12:00:59.9 and another at 12:01:00.0, twice the
limit within a tenth of a second. GCRA keeps one number per key, the
*theoretical arrival time* (TAT): the moment the key would be fully rested if
nothing else arrived. Each admitted unit pushes it `interval` seconds later; a
request is admitted while the TAT stays within `burst * interval` of now. So
any span of `s` seconds admits at most `burst + s / interval` units, with no
edges to game, and state is one float per key that can be forgotten once the
TAT is in the past (a forgotten key and a rested key behave the same).

`MemoryLimiter` uses these functions; the Redis acquire script is a line-by-line
Lua copy of `check` (keep them in step).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.limits.base import RateLimit

# Times within this many seconds count as equal, so that waiting exactly the
# returned `wait` is enough despite float rounding (Redis resolves 1 µs anyway).
TOLERANCE_S = 1e-6


@dataclass(frozen=True)
class Verdict:
    """`wait == 0`: admitted, store `tat`. Otherwise refused for `wait` s."""

    tat: float
    wait: float

    @property
    def allowed(self) -> bool:
        return self.wait == 0.0


def check(tat: float | None, now: float, limit: RateLimit, cost: int) -> Verdict:
    """Whether `cost` units fit now, given the key's TAT (None: rested)."""
    start = now if tat is None else max(tat, now)
    allow_at = start + (cost - limit.capacity) * limit.interval_s
    wait = allow_at - now
    if wait > TOLERANCE_S:
        return Verdict(tat=start, wait=wait)
    return Verdict(tat=start + cost * limit.interval_s, wait=0.0)


def available(tat: float | None, now: float, limit: RateLimit) -> float:
    """Units that could be taken now (fractional while refilling)."""
    if tat is None:
        return float(limit.capacity)
    units = limit.capacity - (tat - now) / limit.interval_s
    return min(float(limit.capacity), max(0.0, units))
