"""The many-streams row: N streams opened in one burst against a stand-in
that waits before each answer — how long until all are admitted, how many
were dropped, the gateway's memory per stream, and the p99 latency of a
health Check meanwhile (the gateway's event-loop lag, seen from outside)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.overhead.callers import CHANNEL_OPTIONS, PLAIN, bearer, image_request, stub
from bench.overhead.cells import measure
from bench.overhead.figures import ms_since, percentiles
from bench.overhead.rig import Bench
from titan.gateway.v1.image_service_pb2_grpc import ImageServiceStub

CHANNELS = 8  # as from several clients (channels share one connection by default)


@dataclass
class StreamTally:
    """What became of the streams of the many-streams row."""

    expected: int
    begin: float = field(default_factory=time.perf_counter)
    admitted: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    stopping: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    _calls: list[Any] = field(default_factory=list)
    _holders: list[asyncio.Task[None]] = field(default_factory=list)

    async def hold(self, call: Any) -> None:
        """Read one stream; note its `accepted` event or how it failed."""
        try:
            async for event in call:
                if event.WhichOneof("event") == "accepted":
                    self.admitted.append(time.perf_counter() - self.begin)
                    self._check()
        except grpc.aio.AioRpcError as exc:
            if not self.stopping:  # our own cancel at the end is no drop
                self.failures[exc.code().name] += 1
                self._check()

    def open(self, stubs: list[ImageServiceStub]) -> None:
        """Start `expected` streams, spread over `stubs`, each read by `hold`."""
        request, metadata = image_request(), bearer("off")
        self._calls = [
            stubs[i % len(stubs)].GenerateImages(request, metadata=metadata)
            for i in range(self.expected)
        ]
        self._holders = [asyncio.create_task(self.hold(call)) for call in self._calls]

    async def close(self) -> None:
        """Cancel every stream still open; those cancels are not counted."""
        self.stopping = True
        for call in self._calls:
            call.cancel()
        await asyncio.gather(*self._holders, return_exceptions=True)

    def _check(self) -> None:
        if len(self.admitted) + self.failures.total() >= self.expected:
            self.settled.set()


async def stream_rows(bench: Bench) -> dict[str, Any]:
    """The row, after a short warm-up of the gateway it runs against."""
    await bench.configure(image="small", delay_s=0)
    await measure(bench.caller(PLAIN), 10, 0.5, None, bench.standin)
    options = bench.options
    return {
        "streams": await many_streams(
            bench, options.streams, options.stream_delay, options.admit_timeout
        )
    }


async def many_streams(
    bench: Bench, streams: int, delay_s: float, admit_s: float
) -> dict[str, Any]:
    """`streams` streams opened in one burst against a stand-in that waits
    `delay_s`: admission time, drops, gateway memory per stream, health lag."""
    await bench.configure(image="small", delay_s=delay_s)
    health = health_pb2_grpc.HealthStub(bench.channel)
    async with _channels(bench.gateway.address) as stubs:
        idle_lag = await probe(health, 2.0)
        rss0 = bench.gateway.rss_kib()
        tally = StreamTally(streams)
        tally.open(stubs)
        burst = asyncio.create_task(probe(health, admit_s, until=tally.settled.is_set))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.settled.wait(), admit_s)
        all_in_s = time.perf_counter() - tally.begin
        burst_lag = await burst
        held_lag = await probe(health, max(3.0, bench.options.seconds))
        rss1 = bench.gateway.rss_kib()
        await tally.close()
    await bench.configure(delay_s=0)
    held = len(tally.admitted)
    return {
        "streams": streams,
        "standin_delay_s": delay_s,
        "admitted": held,
        "all_admitted_s": all_in_s if held == streams else None,
        "last_admitted_s": max(tally.admitted, default=None),
        "dropped": dict(tally.failures),
        "rss_before_kib": rss0,
        "rss_held_kib": rss1,
        "kib_per_stream": (rss1 - rss0) / held if held else None,
        "health_ms_idle": idle_lag,
        "health_ms_during_burst": burst_lag,
        "health_ms_while_held": held_lag,
    }


@contextlib.asynccontextmanager
async def _channels(address: str) -> AsyncIterator[list[ImageServiceStub]]:
    """Stubs on CHANNELS channels of their own (no shared subchannel)."""
    options = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(CHANNELS)]
    try:
        yield [stub(c) for c in channels]
    finally:
        for channel in channels:
            await channel.close()


async def probe(
    health: health_pb2_grpc.HealthStub, seconds: float, until: Callable[[], bool] | None = None
) -> dict[str, float]:
    """p50/p99/max ms of a health Check sent every 10 ms (the gateway's loop lag
    as a caller sees it, including this process's own lag)."""
    times: list[float] = []
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at and not (until and until()):
        start = time.perf_counter()
        await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
        times.append(ms_since(start))
        await asyncio.sleep(0.01)
    return percentiles(times)
