"""Streaming benchmark: one 1-image text-to-image request through the whole
gateway (gRPC → validation → fan-out → aiobotocore → emulator over HTTP at
zero latency, all in this process) against a bare grpc.aio server streaming
the same events with the same PNG bytes, at concurrency 1 and 64.

A third row runs the backend alone (aiobotocore → emulator, no gRPC) so the
table shows where the time goes. Each cell runs for a fixed time, bounded in
requests too. Prints a table; ratios are against the bare server in this run.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway.cli.client import DEV_API_KEY
from gateway.domain import ImageConfig, ImageJob, Quality, TextToImage
from gateway.models import ModelSpec
from gateway.server import RunningGateway, start_gateway
from gateway.settings import load_settings
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

REQUEST = pb.GenerateImagesRequest(
    text_to_image=tasks.TextToImageTask(text="a red fox in snow, studio light"),
    config=tasks.ImageGenerationConfig(number_of_images=1, width=512, height=512, seed=1),
)
MAX_REQUESTS = 20_000


@dataclass(frozen=True)
class Cell:
    name: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class BareImageService(image_service_pb2_grpc.ImageServiceServicer):
    """Streams fixed events: the floor any gRPC streaming server pays."""

    def __init__(self, events: list[pb.GenerateImagesResponse]) -> None:
        self._events = events

    async def GenerateImages(self, request, context) -> AsyncIterator[pb.GenerateImagesResponse]:  # type: ignore[no-untyped-def]
        for event in self._events:
            yield event


async def measure(
    name: str, concurrency: int, seconds: float, one: Callable[[], Awaitable[None]]
) -> Cell:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at and len(latencies) < MAX_REQUESTS:
            start = time.perf_counter()
            await one()
            latencies.append((time.perf_counter() - start) * 1000)

    await one()  # warm-up
    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Cell(name, concurrency, len(latencies), time.perf_counter() - begin, latencies)


METADATA = (("authorization", f"Bearer {DEV_API_KEY}"),)


def grpc_caller(stub: image_service_pb2_grpc.ImageServiceStub) -> Callable[[], Awaitable[None]]:
    async def one() -> None:
        images = 0
        async for event in stub.GenerateImages(REQUEST, metadata=METADATA):
            images += event.WhichOneof("event") == "image"
        assert images == 1

    return one


async def run(seconds: float) -> list[Cell]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(listen="127.0.0.1:0", data_dir=Path(tmp), backend_concurrency=64)
        gateway = await start_gateway(settings)
        try:
            return await run_against(gateway, settings.registry().default, seconds)
        finally:
            await gateway.stop(0)


async def run_against(gateway: RunningGateway, model: ModelSpec, seconds: float) -> list[Cell]:
    cells: list[Cell] = []
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        gw_stub = image_service_pb2_grpc.ImageServiceStub(channel)
        events = [e async for e in gw_stub.GenerateImages(REQUEST, metadata=METADATA)]
        bare = grpc.aio.server()
        image_service_pb2_grpc.add_ImageServiceServicer_to_server(BareImageService(events), bare)  # type: ignore[no-untyped-call]
        port = bare.add_insecure_port("127.0.0.1:0")
        await bare.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as bare_channel:
                bare_stub = image_service_pb2_grpc.ImageServiceStub(bare_channel)
                job = ImageJob(
                    TextToImage("a red fox in snow, studio light"),
                    ImageConfig(1, 512, 512, 8.0, 1, Quality.STANDARD),
                    model,
                )

                async def backend_only() -> None:
                    await gateway.backend.generate_one(job, 0, timeout=60)

                for conc in (1, 64):
                    cells.append(
                        await measure(
                            "bare grpc.aio (same bytes)", conc, seconds, grpc_caller(bare_stub)
                        )
                    )
                    cells.append(
                        await measure(
                            "backend only (aiobotocore→emulator)", conc, seconds, backend_only
                        )
                    )
                    cells.append(
                        await measure("gateway end to end", conc, seconds, grpc_caller(gw_stub))
                    )
        finally:
            await bare.stop(0)
    return cells


def print_table(cells: list[Cell]) -> None:
    baseline = {c.concurrency: c.rate for c in cells if c.name.startswith("bare")}
    header = f"| {'target':<38} | conc | req/s | p50 ms | p99 ms | vs bare |"
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    for c in cells:
        ratio = c.rate / baseline[c.concurrency]
        print(f"| {c.name:<38} | {c.concurrency:>4} | {c.rate:>5.0f} | {c.pct(0.5):>6.1f} "
              f"| {c.pct(0.99):>6.1f} | {ratio:>6.2f}x |")  # fmt: skip
    print(f"\n(each cell {cells[0].seconds:.1f}s or {MAX_REQUESTS} requests; "
          f"median of p50s {statistics.median(c.pct(0.5) for c in cells):.1f} ms)")  # fmt: skip


def run_bench(seconds: float) -> None:
    print_table(asyncio.run(run(seconds)))
