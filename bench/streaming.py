"""Streaming benchmark: one 1-image text-to-image request through the whole
gateway (gRPC → validation → fan-out → aiobotocore → emulator over HTTP at
zero latency, all in this process) against a bare grpc.aio server streaming
the same events with the same PNG bytes, at concurrency 1 and 64.

Two gateway rows: telemetry off (no SDK) and on (every span and metric
recorded by the SDK, exported in-process). A row runs the backend alone
(aiobotocore → emulator, no gRPC) so the table shows where the time goes.
Each cell runs for a fixed time, bounded in requests too. Prints a table;
ratios are against the bare server in this run.
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
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.cli.client import DEV_API_KEY
from gateway.domain import ImageConfig, ImageJob, Quality, TextToImage
from gateway.registry import ModelSpec
from gateway.server import RunningGateway, start_gateway
from gateway.settings import load_settings
from gateway.telemetry.sdk import TelemetryConfig, configure_telemetry
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

REQUEST = pb.GenerateImagesRequest(
    text_to_image=tasks.TextToImageTask(text="a red fox in snow, studio light"),
    config=tasks.ImageGenerationConfig(number_of_images=1, width=512, height=512, seed=1),
)
MAX_REQUESTS = 20_000
TITAN_V2 = "amazon.titan-image-generator-v2:0"


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
        # Titan v2 (512x512, as the figures in the README have always been):
        # past its end of life on Bedrock, still served by the emulator.
        base = {"listen": "127.0.0.1:0", "backend_concurrency": 64, "default_model_id": TITAN_V2}
        off = load_settings(data_dir=Path(tmp) / "off", telemetry={"enabled": False}, **base)
        on = load_settings(data_dir=Path(tmp) / "on", **base)
        # Telemetry on: every span and metric is recorded by the SDK and
        # exported in-process, so the row is the instrumentation's own cost.
        telemetry = configure_telemetry(
            TelemetryConfig(),
            span_exporters=[InMemorySpanExporter()],
            metric_readers=[InMemoryMetricReader()],
            set_global=False,
        )
        quiet = await start_gateway(off)
        traced = await start_gateway(on, telemetry=telemetry)
        try:
            model = off.registry().get(TITAN_V2)
            assert model is not None
            return await run_against(quiet, traced, model, seconds)
        finally:
            await quiet.stop(0)
            await traced.stop(0)
            telemetry.shutdown()


async def run_against(
    gateway: RunningGateway, traced: RunningGateway, model: ModelSpec, seconds: float
) -> list[Cell]:
    cells: list[Cell] = []
    async with (
        grpc.aio.insecure_channel(gateway.address) as channel,
        grpc.aio.insecure_channel(traced.address) as traced_channel,
    ):
        gw_stub = image_service_pb2_grpc.ImageServiceStub(channel)
        traced_stub = image_service_pb2_grpc.ImageServiceStub(traced_channel)
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

                targets = [
                    ("bare grpc.aio (same bytes)", grpc_caller(bare_stub)),
                    ("backend only (aiobotocore→emulator)", backend_only),
                    ("gateway, telemetry off", grpc_caller(gw_stub)),
                    ("gateway, telemetry on", grpc_caller(traced_stub)),
                ]
                for conc in (1, 64):
                    for name, one in targets:
                        cells.append(await measure(name, conc, seconds, one))
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
