"""The measured cells — image x route x concurrency, each bounded in time and
in requests, with the CPU each process spent — and the time to the first
image of a 5-image request against a 1-image one."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from bench.overhead.callers import DIRECT, ROUTES, One, direct_caller, gateway_caller, http_session
from bench.overhead.figures import median, ms_since, pct
from bench.overhead.processes import Process, start_standin
from bench.overhead.rig import Bench

# The stand-in's two images, as the tables and the plot name them.
IMAGES = {"small": "21 KB", "large": "1.39 MB"}
CONCURRENCY = {"small": (1, 10, 64, 512), "large": (1, 10, 64)}
MAX_REQUESTS = 20_000
# Marking costs 60-450 ms of CPU per image: 512 marked requests in flight
# would only measure a queue, for half a minute.
MARKED_MAX_CONCURRENCY = 64


@dataclass
class Cell:
    """One measured cell; CPU figures are ms per completed request."""

    image: str
    route: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    gateway_cpu_ms: float | None
    standin_cpu_ms: float
    caller_cpu_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return pct(sorted(self.latencies_ms), q)


async def measure(
    one: One, concurrency: int, seconds: float, gateway: Process | None, standin: Process
) -> tuple[list[float], int, float, dict[str, float]]:
    """Run `one` from `concurrency` workers for `seconds` (or MAX_REQUESTS);
    returns latencies, errors, elapsed seconds, CPU seconds used per process."""
    for _ in range(2):  # warm-up: a connection, caches
        await one()
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at and len(latencies) < MAX_REQUESTS:
            try:
                latencies.append(await one())
            except (grpc.aio.AioRpcError, aiohttp.ClientError, RuntimeError):
                errors += 1

    cpu0 = cpu_snapshot(gateway, standin)
    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - begin
    cpu1 = cpu_snapshot(gateway, standin)
    return latencies, errors, elapsed, {k: cpu1[k] - cpu0[k] for k in cpu0}


def cpu_snapshot(gateway: Process | None, standin: Process) -> dict[str, float]:
    times = os.times()
    snapshot = {"caller": times.user + times.system, "standin": standin.cpu_s()}
    if gateway is not None:
        snapshot["gateway"] = gateway.cpu_s()
    return snapshot


async def run_cell(
    image: str, route: str, conc: int, seconds: float, one: One, gw: Process, si: Process
) -> Cell:
    gateway = None if route == DIRECT else gw
    latencies, errors, elapsed, cpu = await measure(one, conc, seconds, gateway, si)
    per = 1000 / max(1, len(latencies))
    gateway_ms = cpu["gateway"] * per if "gateway" in cpu else None
    return Cell(
        image,
        route,
        conc,
        len(latencies),
        errors,
        elapsed,
        latencies,
        gateway_ms,
        cpu["standin"] * per,
        cpu["caller"] * per,
    )


async def cells(bench: Bench) -> list[Cell]:
    """Every cell of the main table, image by image."""
    measured = []
    for image, levels in CONCURRENCY.items():
        await bench.configure(image=image, delay_s=0)
        for conc, route in _plan(levels, bench.options.max_concurrency):
            one = bench.caller(route)
            seconds = bench.options.seconds
            cell = await run_cell(image, route, conc, seconds, one, bench.gateway, bench.standin)
            measured.append(cell)
            print(f"  {image} {route} c={conc}: {cell.rate:.0f} req/s", file=sys.stderr)
    return measured


def _plan(levels: tuple[int, ...], max_concurrency: int) -> Iterator[tuple[int, str]]:
    """(concurrency, route) of one image's cells, the levels the run skips left out."""
    for conc in levels:
        if conc > max_concurrency:
            continue
        for route, tenant in ROUTES.items():
            if not (tenant == "required" and conc > MARKED_MAX_CONCURRENCY):
                yield conc, route


async def standin_choice(tmp: Path, seconds: float) -> list[Cell]:
    """Direct small-image c=10 against each stand-in server: its CPU per answer."""
    choice = []
    for impl in ("raw", "aiohttp"):
        standin = await start_standin(tmp, impl)
        try:
            async with http_session() as session:
                one = direct_caller(session, standin.address)
                route = f"direct ({impl} stand-in)"
                choice.append(await run_cell("small", route, 10, seconds, one, standin, standin))
        finally:
            await standin.stop()
    return choice


def cell_dict(cell: Cell) -> dict[str, Any]:
    row = {k: v for k, v in asdict(cell).items() if k != "latencies_ms"}
    return row | {"req_s": cell.rate, "p50_ms": cell.pct(0.5), "p99_ms": cell.pct(0.99)}


def with_added(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each cell with `added_p50_ms` and `vs_direct` (throughput ratio)."""
    direct = {(c["image"], c["concurrency"]): c for c in cells if c["route"] == DIRECT}
    for c in cells:
        base = direct.get((c["image"], c["concurrency"]))
        c["added_p50_ms"] = c["p50_ms"] - base["p50_ms"] if base else None
        c["vs_direct"] = c["req_s"] / base["req_s"] if base and base["req_s"] else None
    return cells


# -- time to first image -------------------------------------------------------


async def ttfi(bench: Bench, seconds: float, delay_s: float) -> list[dict[str, Any]]:
    """p50 ms to the first image and to the end, 1 vs 5 images, the stand-in
    waiting `delay_s` before each answer (large image)."""
    await bench.configure(image="large", delay_s=delay_s)
    rows = []
    for tenant in ("off", "required"):
        for images in (1, 5):
            one = gateway_caller(bench.stub, tenant, images)
            rows.append({"provenance": tenant, "images": images} | await _ttfi_row(one, seconds))
    await bench.configure(delay_s=0)
    return rows


async def _ttfi_row(one: One, seconds: float) -> dict[str, Any]:
    """`one` in turn for `seconds` (at least 3, at most 200 times)."""
    firsts: list[float] = []
    totals: list[float] = []
    stop_at = time.perf_counter() + seconds
    while (time.perf_counter() < stop_at and len(firsts) < 200) or len(firsts) < 3:
        start = time.perf_counter()
        firsts.append(await one())
        totals.append(ms_since(start))
    return {"runs": len(firsts), "first_p50_ms": median(firsts), "all_p50_ms": median(totals)}
