"""The figures issue 12 asks for, each set against its limit: gateway CPU
per request, added p50, throughput against direct, and the many-streams
row's admission, drops, memory and loop lag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.overhead.callers import route_of, workers_route
from bench.overhead.cells import with_added
from bench.overhead.figures import fmt
from bench.overhead.processes import KEYS

# (target, measured with provenance off, with provenance required, met)
Row = tuple[str, str, str, bool | None]


@dataclass(frozen=True)
class Limit:
    """At most `limit` (in `unit`) for `key` of the cell image x concurrency."""

    name: str
    image: str
    concurrency: int
    key: str
    limit: float
    unit: str


LIMITS = (
    Limit("gateway CPU/request, 21 KB, c=10", "small", 10, "gateway_cpu_ms", 1.0, " ms"),
    Limit("gateway CPU/request, 1.39 MB, c=10", "large", 10, "gateway_cpu_ms", 3.0, " ms"),
    Limit("added p50, 21 KB, c=1", "small", 1, "added_p50_ms", 0.5, " ms"),
    Limit("added p50, 21 KB, c=10", "small", 10, "added_p50_ms", 4.0, " ms"),
)


def targets(result: dict[str, Any]) -> list[Row]:
    """One row per limit, per image for throughput, then the streams' rows."""
    cells = {(c["image"], c["route"], c["concurrency"]): c for c in with_added(result["cells"])}

    def figure(image: str, conc: int, key: str) -> tuple[float | None, float | None]:
        off, required = (cells.get((image, route_of(t), conc), {}).get(key) for t in KEYS)
        return off, required

    rows = []
    for t in LIMITS:
        off, req = figure(t.image, t.concurrency, t.key)
        met = None if off is None else off <= t.limit
        rows.append((f"{t.name} <= {t.limit:g}{t.unit}", fmt(off, t.unit), fmt(req, t.unit), met))
    for image in ("small", "large"):
        off, req = figure(image, 64, "vs_direct")
        name = f"throughput at c=64 >= 50 % of direct, {image}"
        rows.append((name, fmt(off, "x"), fmt(req, "x"), None if off is None else off >= 0.5))
    two = cells.get(("small", workers_route(2), 64), {}).get("vs_direct")
    name = "throughput at c=64 >= 50 % of direct, small, 2 worker processes"
    rows.append((name, fmt(two, "x"), "", None if two is None else two >= 0.5))
    rows += stream_targets(result.get("streams"))
    return rows + stream_targets(result.get("streams_2_workers"))


def stream_targets(s: dict[str, Any] | None) -> list[Row]:
    if not s:
        return []
    n, within, per = s["streams"], s["all_admitted_s"], s["kib_per_stream"]
    how = f", {s['workers']} workers" if s.get("workers") else ""
    lag = s["health_ms_while_held"]["p99"]
    dropped = sum(s["dropped"].values())
    admitted = (
        fmt(within, " s")
        if within
        else f"{s['admitted']:,} admitted, the last at {fmt(s['last_admitted_s'], ' s')}"
    )
    in_time = within is not None and within <= 10
    dropped_text = f"{dropped:,} dropped {s['dropped'] or ''}"
    return [
        (f"{n:,} streams{how} all admitted within 10 s", admitted, "", in_time),
        (f"{n:,} streams{how}: none dropped", dropped_text, "", dropped == 0),
        (
            f"< 50 KB of gateway memory per stream{how}",
            fmt(per, " KiB"),
            "",
            per is not None and per < 50,
        ),
        (f"loop lag p99 < 10 ms (health Check p99 while held{how})", fmt(lag, " ms"), "", lag < 10),
    ]
