"""`BudgetAlert`: one budget crossing one alert threshold, and its JSON body.

The event id is derived, not random: (tenant, period, window start, limit,
threshold) names one crossing, so two replicas that both see it, or a
delivery retried, carry the same id and a receiver can drop the repeat. A
top-up changes the limit, so crossing the same threshold again after one is
a new event.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EVENT_TYPE = "budget.threshold_crossed"


@dataclass(frozen=True)
class BudgetAlert:
    """A tenant's budget for `period` reached `threshold` (a used fraction).

    Money is integer micro-USD; `spent_micros` counts settled spend only (the
    request that crossed has released what it did not use)."""

    tenant: str
    period: str
    threshold: float
    used_fraction: float
    spent_micros: int
    limit_micros: int
    window_start: datetime
    resets_at: datetime | None
    crossed_at: datetime
    request_id: str

    @property
    def event_id(self) -> str:
        key = "\x00".join(
            (self.tenant, self.period, _iso(self.window_start), str(self.limit_micros),
             repr(float(self.threshold)))
        )  # fmt: skip
        return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:32]

    def payload(self) -> dict[str, Any]:
        """The JSON object a webhook or SNS subscriber receives."""
        return {
            "type": EVENT_TYPE,
            "event_id": self.event_id,
            "tenant": self.tenant,
            "period": self.period,
            "threshold": self.threshold,
            "used_fraction": round(self.used_fraction, 6),
            "spent_micros": self.spent_micros,
            "limit_micros": self.limit_micros,
            "window_start": _iso(self.window_start),
            "resets_at": _iso(self.resets_at) if self.resets_at else None,
            "crossed_at": _iso(self.crossed_at),
            "request_id": self.request_id,
        }

    def body(self) -> bytes:
        """`payload()` as compact UTF-8 JSON with sorted keys (the bytes that are signed)."""
        return json.dumps(self.payload(), separators=(",", ":"), sort_keys=True).encode()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
