"""`guard_stores`: the one call the server makes, and a gRPC health reporter for it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from grpc_health.v1 import health_pb2

from gateway.ledger import Ledger
from gateway.limits import Limiter
from gateway.limits.memory import MemoryLimiter
from gateway.stores.health import OnChange, StoreHealth
from gateway.stores.ledger import TimedLedger
from gateway.stores.limiter import TimedLimiter


def guard_stores(
    ledger: Ledger,
    limiter: Limiter,
    *,
    timeout_s: float,
    probe_interval_s: float,
    on_change: OnChange | None = None,
) -> tuple[Ledger, Limiter, StoreHealth]:
    """Wrap started stores: every call within `timeout_s`, fail fast while down
    (the in-process limiter is returned as it is).

    Run `health.watch()` as a task for as long as the stores serve; it probes
    a down store every `probe_interval_s` and `on_change(all_up)` is awaited
    whenever the overall state flips. The wrappers do not own the stores: close
    the originals as before.
    """
    health = StoreHealth(probe_interval_s=probe_interval_s, on_change=on_change)
    timed_ledger: Ledger = TimedLedger(ledger, health, timeout_s)
    # The in-process limiter cannot hang or go down: a guard would only add a
    # task and a timer to each of its calls (8 % of a request's CPU, measured).
    timed_limiter: Limiter = (
        limiter if isinstance(limiter, MemoryLimiter) else TimedLimiter(limiter, health, timeout_s)
    )
    return timed_ledger, timed_limiter, health


def grpc_health_reporter(servicer: Any, services: Iterable[str]) -> OnChange:
    """An `on_change` that sets every name in `services` ("" too) SERVING or NOT_SERVING.

    `servicer` is a `grpc_health.v1.health.aio.HealthServicer`.
    """
    names = tuple(services)

    async def report(all_up: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if all_up
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in names:
            await servicer.set(name, status)

    return report
