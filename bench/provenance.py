"""Provenance benchmark: what watermarking and signing cost per 1024x1024
image, next to the rest of a request, and whether the event loop notices.

Rows:
- each step alone, on one thread (embed the watermark, encode, sign the C2PA
  manifest, read it back as the ledger keeps it), then the whole
  `Marker.mark`, for a PNG and a JPEG;
- a whole 1-image 1024x1024 request through the gateway and the emulator
  with provenance `required` against the same request with provenance `off`
  (two tenants of one gateway, run alternately), so the difference is what
  provenance adds to a request's latency;
- the event loop's worst lag (a 1 ms ticker) while 8 images are marked at
  once, against its lag with nothing running: marking happens on worker
  threads, so the loop should not see it.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from PIL import Image

from gateway.domain import ImageConfig, ImageJob, Quality, TextToImage
from gateway.emulator.render import generate, seeded_rng
from gateway.provenance import watermark
from gateway.provenance.manifest import Claims
from gateway.provenance.marker import Marker, Origin
from gateway.provenance.reading import read_manifest
from gateway.provenance.settings import ProvenanceSettings
from gateway.server import start_gateway
from gateway.settings import load_settings
from policies import hash_key
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

SIDE = 1024
MAX_RUNS = 200


def _image(fmt: str) -> bytes:
    picture = generate((SIDE, SIDE), seeded_rng("bench", "a harbour at dawn, boats and gulls"))
    out = io.BytesIO()
    picture.convert("RGB").save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def _median_ms(work: Callable[[], object], seconds: float) -> float:
    work()  # warm-up
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop and len(times) < MAX_RUNS:
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _steps(marker: Marker, fmt: str, seconds: float) -> list[tuple[str, float]]:
    data = _image(fmt)
    mime = "image/png" if fmt == "PNG" else "image/jpeg"
    picture = Image.open(io.BytesIO(data))
    picture.load()
    marked = watermark.embed(picture, watermark.new_watermark_id())
    encoded = io.BytesIO()
    marked.save(encoded, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    pixels = encoded.getvalue()
    claims = Claims(
        "m", "TEXT_IMAGE", "r", 0, "t", watermark.new_watermark_id(), watermark.ALGORITHM
    )
    signed = marker._signer.sign(pixels, mime, claims)

    def encode() -> None:
        marked.save(io.BytesIO(), fmt, **({"quality": 95} if fmt == "JPEG" else {}))

    job = ImageJob(
        TextToImage("bench"), ImageConfig(1, SIDE, SIDE, 8.0, 1, Quality.STANDARD), _model()
    )
    origin = Origin("bench-request", "bench-tenant")
    anchors = marker.trust_anchors
    steps: list[tuple[str, Callable[[], object]]] = [
        ("embed watermark", lambda: watermark.embed(picture, "0" * 12)),
        ("encode", encode),
        ("sign manifest", lambda: marker._signer.sign(pixels, mime, claims)),
        ("read back", lambda: read_manifest(signed, mime, anchors)),
        ("whole mark (one thread)", lambda: marker._mark(data, _claims(marker, job, origin), None)),
        ("detect (copy as delivered)", lambda: watermark.detect(Image.open(io.BytesIO(signed)))),
    ]
    return [(f"{fmt}: {name}", _median_ms(work, seconds)) for name, work in steps]


def _claims(marker: Marker, job: ImageJob, origin: Origin) -> Claims:
    return Claims(
        job.model.model_id, job.task_type.value, origin.request_id, 0,
        marker.tenant_ref(origin.tenant_id), watermark.new_watermark_id(), watermark.ALGORITHM,
    )  # fmt: skip


def _model():  # type: ignore[no-untyped-def]
    return load_settings().registry().get("amazon.titan-image-generator-v2:0")


async def _loop_lag_ms(work: Callable[[], Awaitable[object]] | None, seconds: float) -> float:
    """The worst delay of a 1 ms ticker while `work` runs (or for `seconds`)."""
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, (time.perf_counter() - before) * 1000 - 1)

    tick = asyncio.create_task(ticker())
    if work is None:
        await asyncio.sleep(seconds)
    else:
        await work()
    done.set()
    await tick
    return worst


async def _requests(seconds: float) -> tuple[float, float]:
    """p50 ms of a 1-image 1024x1024 request with provenance required / off."""
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(
            f"""
version: 1
tiers:
  t: {{}}
tenants:
  - {{id: marked, tier: t, api_keys: ["{hash_key("k-marked")}"]}}
  - {{id: plain, tier: t, api_keys: ["{hash_key("k-plain")}"], provenance: "off"}}
""",
            encoding="utf-8",
        )
        settings = load_settings(
            listen="127.0.0.1:0", data_dir=Path(tmp), policy_file=policy,
            telemetry={"enabled": False}, default_model_id="amazon.titan-image-generator-v2:0",
        )  # fmt: skip
        gateway = await start_gateway(settings)
        request = pb.GenerateImagesRequest(
            text_to_image=tasks.TextToImageTask(text="a harbour at dawn"),
            config=tasks.ImageGenerationConfig(number_of_images=1, width=SIDE, height=SIDE),
        )
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        try:
            async with grpc.aio.insecure_channel(gateway.address, options=options) as channel:
                stub = image_service_pb2_grpc.ImageServiceStub(channel)
                times: dict[str, list[float]] = {"k-marked": [], "k-plain": []}
                stop = time.perf_counter() + 2 * seconds
                while time.perf_counter() < stop and len(times["k-plain"]) < MAX_RUNS:
                    for key, runs in times.items():
                        start = time.perf_counter()
                        metadata = (("authorization", f"Bearer {key}"),)
                        async for _ in stub.GenerateImages(request, metadata=metadata):
                            pass
                        runs.append((time.perf_counter() - start) * 1000)
        finally:
            await gateway.stop(0)
    # The first of each is a warm-up.
    return statistics.median(times["k-marked"][1:]), statistics.median(times["k-plain"][1:])


async def _run(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        marker = Marker.from_settings(ProvenanceSettings(), Path(tmp))
        try:
            rows = _steps(marker, "PNG", seconds) + _steps(marker, "JPEG", seconds)
            job = ImageJob(
                TextToImage("bench"), ImageConfig(1, SIDE, SIDE, 8.0, 1, Quality.STANDARD), _model()
            )
            data = _image("PNG")

            async def eight() -> None:
                await asyncio.gather(
                    *(marker.mark(data, job, i, Origin("r", "t")) for i in range(8))
                )

            idle = await _loop_lag_ms(None, 1.0)
            start = time.perf_counter()
            busy = await _loop_lag_ms(eight, 0)
            eight_ms = (time.perf_counter() - start) * 1000
        finally:
            marker.close()
    marked, plain = await _requests(seconds)
    width = max(len(name) for name, _ in rows)
    print(f"{'step (1024x1024, median)'.ljust(width)}  {'ms':>8}")
    for name, ms in rows:
        print(f"{name.ljust(width)}  {ms:8.1f}")
    print()
    print("| request (1 image, 1024x1024, emulator) | p50 ms | ratio |")
    print("|---|---|---|")
    print(f"| provenance off | {plain:.1f} | 1.00 |")
    print(f"| provenance required | {marked:.1f} | {marked / plain:.2f} |")
    print(f"| provenance's share | {marked - plain:.1f} | — |")
    print()
    print("| event loop | worst lag ms |")
    print("|---|---|")
    print(f"| idle, 1 s | {idle:.1f} |")
    print(f"| while 8 images are marked at once ({eight_ms:.0f} ms in all) | {busy:.1f} |")


def run_bench(seconds: float) -> None:
    asyncio.run(_run(seconds))
