"""Small arithmetic shared by the rows and the report: quantiles, elapsed
milliseconds, today's date and the way one figure is printed."""

from __future__ import annotations

import datetime
import statistics
import time


def ms_since(start: float) -> float:
    """Milliseconds from `start` (a `time.perf_counter()` reading) until now."""
    return (time.perf_counter() - start) * 1000


def today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "p50": pct(ordered, 0.5), "p99": pct(ordered, 0.99),
            "max": pct(ordered, 1.0)}  # fmt: skip


def pct(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank); NaN when there are none."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def fmt(value: float | None, unit: str) -> str:
    """One figure for a table: two decimals below 10, whole numbers above."""
    if value is None:
        return "—"
    return f"{value:.2f}{unit}" if abs(value) < 10 else f"{value:,.0f}{unit}"
