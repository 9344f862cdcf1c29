"""The worker-process rows (issue 12: "using all cores"): the 21 KB image,
provenance off, at c=10 and c=64, against `gateway serve` with `workers: 2`
and, as its like-for-like baseline, `workers: 1` — both with the Redis
limiter more than one worker needs (under a key prefix of this run's own,
deleted afterwards), and the caller's requests spread over `CHANNELS`
channels of one connection each: the kernel gives each connection to one
worker, so one channel would keep every request on one of them. The
gateway's CPU is the parent's plus its workers'. Without a local Redis the
rows are skipped, with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import redis.asyncio as aioredis

from bench.overhead.callers import CHANNEL_OPTIONS, spread_caller, stub, workers_route
from bench.overhead.cells import Cell, run_cell
from bench.overhead.processes import Process, connections, start_gateway
from bench.overhead.rig import Bench, configure_standin
from bench.overhead.streams import stream_rows

WORKER_COUNTS = (1, 2)
LEVELS = (10, 64)
CHANNELS = 32
REDIS_URL = "redis://127.0.0.1:6379/0"
_PIDS = re.compile(r"workers serving on \S+: pids ([\d, ]+)")


async def worker_cells(
    tmp: Path, standin: Process, session: aiohttp.ClientSession, options: argparse.Namespace
) -> list[Cell]:
    """The rows for each of WORKER_COUNTS, or none without Redis."""
    prefix = f"bench-overhead-{secrets.token_hex(6)}:"
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        await client.aclose()
        print(f"  worker rows skipped: no Redis at {REDIS_URL} ({exc})", file=sys.stderr)
        return []
    try:
        await configure_standin(session, standin, image="small", delay_s=0)
        return await _measure_all(tmp, standin, options, prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def worker_streams(
    tmp: Path, standin: Process, session: aiohttp.ClientSession, options: argparse.Namespace
) -> dict[str, Any] | None:
    """The many-streams row against `workers: 2` (one replica, both cores), or
    None without Redis."""
    prefix = f"bench-overhead-{secrets.token_hex(6)}:"
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        await client.aclose()
        print(f"  2-worker streams row skipped: no Redis at {REDIS_URL} ({exc})", file=sys.stderr)
        return None
    try:
        gateway = await _start(tmp, standin, 2, f"{prefix}streams:")
        try:
            async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as ch:
                bench = Bench(tmp, standin, gateway, session, ch, options)
                rows: dict[str, Any] = (await stream_rows(bench))["streams"]
                return rows | {"workers": 2}
        finally:
            await gateway.stop()
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _measure_all(
    tmp: Path, standin: Process, options: argparse.Namespace, prefix: str
) -> list[Cell]:
    """The gateways start together and stop together (that is most of these
    rows' time); each is measured alone while the others idle."""
    started = await asyncio.gather(
        *(_start(tmp, standin, workers, f"{prefix}{workers}:") for workers in WORKER_COUNTS),
        return_exceptions=True,
    )
    try:
        cells = []
        for workers, gateway in zip(WORKER_COUNTS, started, strict=True):
            if isinstance(gateway, BaseException):
                raise gateway
            cells += await _rows(options, workers, gateway, standin)
        return cells
    finally:
        await asyncio.gather(*(g.stop() for g in started if isinstance(g, Process)))


async def _start(tmp: Path, standin: Process, workers: int, prefix: str) -> Process:
    settings = {
        "TITAN_GW_WORKERS": str(workers),
        "TITAN_GW_LISTEN": f"127.0.0.1:{_free_port()}",  # port 0 cannot be shared
        "TITAN_GW_LIMITS_URL": REDIS_URL,
        "TITAN_GW_LIMITS_PREFIX": prefix,
        "TITAN_GW_DATA_DIR": str(tmp / f"data-{workers}-workers"),
    }
    return await start_gateway(tmp, standin.address, settings, name=f"gateway-{workers}-workers")


async def _rows(
    options: argparse.Namespace, workers: int, gateway: Process, standin: Process
) -> list[Cell]:
    options_ = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(gateway.address, options=options_) for _ in range(CHANNELS)
    ]
    try:
        await asyncio.gather(*(c.channel_ready() for c in channels))
        split = "/".join(map(str, connections(_serving_pids(gateway), _port(gateway))))
        one = spread_caller([stub(c) for c in channels], "off")
        cells = []
        for conc in (c for c in LEVELS if c <= options.max_concurrency):
            route = workers_route(workers)
            cell = await run_cell("small", route, conc, options.seconds, one, gateway, standin)
            cells.append(cell)
            print(f"  small {route} c={conc}: {cell.rate:.0f} req/s "
                  f"(connections per worker {split})", file=sys.stderr)  # fmt: skip
        return cells
    finally:
        await asyncio.gather(*(c.close() for c in channels))


def _serving_pids(gateway: Process) -> list[int]:
    """The workers' pids as the parent logged them; the gateway's own with one."""
    if match := _PIDS.search(gateway.output.read_text(errors="replace")):
        return [int(pid) for pid in match.group(1).split(",")]
    return [gateway.pid]


def _port(gateway: Process) -> int:
    return int(gateway.address.rsplit(":", 1)[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
