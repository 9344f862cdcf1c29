"""Store guards: time-bounded calls to the ledger and the limiter, and the health they report.

    StoreHealth     each store up or down; bounded calls; `watch()` probes the down ones
    TimedLedger     a `Ledger` whose every call is bounded and reported (ledger.py)
    TimedLimiter    a `Limiter` likewise (limiter.py)
    guard_stores    wraps both around one `StoreHealth` (guard.py)

While a store is down its calls fail at once with its unavailability error
(`LedgerUnavailable`, `LimiterUnavailable`: gRPC UNAVAILABLE), the server
reports NOT_SERVING, and the first probe that gets an answer brings it back.
"""

from __future__ import annotations

from gateway.stores.guard import grpc_health_reporter, guard_stores
from gateway.stores.health import OnChange, StoreHealth
from gateway.stores.ledger import LEDGER, TimedLedger
from gateway.stores.limiter import LIMITER, TimedLimiter

__all__ = [
    "LEDGER",
    "LIMITER",
    "OnChange",
    "StoreHealth",
    "TimedLedger",
    "TimedLimiter",
    "grpc_health_reporter",
    "guard_stores",
]
