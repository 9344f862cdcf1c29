"""The rate-limiter seam: value objects, the `Limiter` protocol, its one error.

Two kinds of limit sit behind one interface:

* **Rates** (requests per minute, images per minute/day, the global
  images-per-minute cap) use GCRA, see `gateway.limits.gcra` for why.
* **Concurrency** uses slots that are *leases*: a slot expires `lease_s` after
  it was taken or last renewed, so a replica that dies while holding slots
  cannot lock a tenant out for good; the survivors get them back when the
  leases run out.

`MemoryLimiter` serves one replica, `RedisLimiter` serves many; only the
server's start-up (through `open_limiter`) names either of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from gateway.errors import GatewayError


@dataclass(frozen=True)
class RateLimit:
    """`limit` units per `period_s`; up to `burst` (default `limit`) at once.

    After a burst the allowance refills smoothly, one unit every
    `period_s / limit` seconds, instead of all at once at a window edge.
    """

    limit: int
    period_s: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"period_s must be a positive number, got {self.period_s}")
        if self.burst is not None and self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")

    @property
    def capacity(self) -> int:
        """Units that may be taken at once from a rested limit."""
        return self.limit if self.burst is None else self.burst

    @property
    def interval_s(self) -> float:
        """GCRA's emission interval: the seconds one unit takes to refill."""
        return self.period_s / self.limit


@dataclass(frozen=True)
class RateRequest:
    """Take `cost` units (e.g. an image count) of `limit` on the counter `key`.

    `name` is the quota's name for errors (e.g. "images_per_minute"). Requests
    in one `acquire` should use distinct keys; repeated keys are charged
    cumulatively.
    """

    key: str
    limit: RateLimit
    cost: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("key must not be empty")
        if self.cost < 0:
            raise ValueError(f"cost must be >= 0, got {self.cost}")


@dataclass(frozen=True)
class RateDecision:
    """The verdict of one `acquire`.

    When refused, `refused` is the limit with the longest wait and
    `retry_after_s` that wait: after it, the same call would be admitted if
    nobody else consumed meanwhile. `math.inf` means never: the cost exceeds
    the limit's burst, so waiting cannot help and the caller should report a
    request that is too large for the quota.
    """

    allowed: bool
    refused: RateRequest | None = None
    retry_after_s: float = 0.0


@dataclass(frozen=True)
class SlotDecision:
    """The verdict of one `acquire_slot`.

    When refused, `retry_after_s` is the time until the oldest lease runs out:
    the latest a slot frees up unless it is renewed (a release can free one
    sooner).
    """

    allowed: bool
    slot_id: str | None = None
    retry_after_s: float = 0.0


class LimiterUnavailable(GatewayError):
    """The limiter's store (Redis) could not be reached or failed.

    Callers decide whether to fail closed (refuse) or open (admit); the
    limiter itself never guesses.
    """

    code = grpc.StatusCode.UNAVAILABLE


class Limiter(Protocol):
    """Rate limits and concurrency slots, shared by whoever shares the store.

    `acquire` is all-or-nothing: it admits on every limit and charges them all,
    or charges none and names the limit that refused. `release_slot` is
    idempotent; `renew_slot` returns False when the lease was already lost (the
    slot expired or was released) and the caller no longer holds a slot.
    `peek` reports the units available now without consuming any.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def acquire(self, requests: Sequence[RateRequest]) -> RateDecision: ...

    async def acquire_slot(self, key: str, max_slots: int, *, lease_s: float) -> SlotDecision: ...

    async def release_slot(self, key: str, slot_id: str) -> None: ...

    async def renew_slot(self, key: str, slot_id: str, *, lease_s: float) -> bool: ...

    async def peek(self, request: RateRequest) -> float: ...


def never_admitted(requests: Sequence[RateRequest]) -> RateDecision | None:
    """Refuse with an infinite wait if a cost exceeds its burst, else None.

    Decided before touching any state, so such a call charges nothing.
    """
    for request in requests:
        if request.cost > request.limit.capacity:
            return RateDecision(allowed=False, refused=request, retry_after_s=math.inf)
    return None


def check_slot_args(max_slots: int, lease_s: float) -> None:
    """Reject slot arguments no store could honour."""
    if max_slots < 1:
        raise ValueError(f"max_slots must be >= 1, got {max_slots}")
    if not (math.isfinite(lease_s) and lease_s > 0):
        raise ValueError(f"lease_s must be a positive number, got {lease_s}")
