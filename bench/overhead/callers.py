"""The caller's side of one request, by route: `direct` POSTs to the stand-in
and decodes JSON and base64 itself, as a client of Bedrock does; the gateway
routes read one GenerateImages stream. Each returns ms until the caller holds
the (first) image, so the routes compare like for like."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import grpc

from bench.overhead.figures import ms_since
from bench.overhead.processes import KEYS, MODEL_ID
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

DIRECT = "direct"


def route_of(tenant: str) -> str:
    """The name of the gateway route through the tenant with provenance `tenant`."""
    return f"gateway, provenance {tenant}"


def workers_route(workers: int) -> str:
    """The route of the worker-process rows (bench.overhead.workers): provenance
    off, a Redis limiter, many channels; not in ROUTES (a gateway of their own)."""
    return f"gateway, {workers} worker{'s' if workers > 1 else ''} + Redis, provenance off"


# Route name -> the provenance setting of its tenant (None: no gateway).
ROUTES: dict[str, str | None] = {DIRECT: None} | {route_of(t): t for t in KEYS}
PLAIN = route_of("off")
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]

One = Callable[[], Awaitable[float]]  # one request; ms until the caller holds the image


def http_session() -> aiohttp.ClientSession:
    """A client session without aiohttp's cap of 100 connections."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


def stub(channel: grpc.aio.Channel) -> image_service_pb2_grpc.ImageServiceStub:
    return image_service_pb2_grpc.ImageServiceStub(channel)  # type: ignore[no-untyped-call]


def bearer(tenant: str) -> tuple[tuple[str, str], ...]:
    """Call metadata with the API key of the tenant with provenance `tenant`."""
    return (("authorization", f"Bearer {KEYS[tenant]}"),)


def invoke_body() -> bytes:
    """The body the gateway sends for `image_request()` (one image)."""
    body = {"prompt": "a red fox in snow", "aspect_ratio": "1:1", "seed": 1, "output_format": "png"}
    return json.dumps(body).encode()


def direct_caller(session: aiohttp.ClientSession, standin: str) -> One:
    url = f"http://{standin}/model/{MODEL_ID}/invoke"
    body = invoke_body()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    async def one() -> float:
        start = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as answer:
            payload = await answer.read()
        image = base64.b64decode(json.loads(payload)["images"][0])
        assert image[:4] == b"\x89PNG"
        return ms_since(start)

    return one


def image_request(images: int = 1) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox in snow"),
        config=tasks.ImageGenerationConfig(number_of_images=images, aspect_ratio="1:1"),
    )


def gateway_caller(
    stub: image_service_pb2_grpc.ImageServiceStub, tenant: str, images: int = 1
) -> One:
    """One GenerateImages stream read to its end; returns ms to the first image."""
    request = image_request(images)
    metadata = bearer(tenant)

    async def one() -> float:
        start = time.perf_counter()
        first = 0.0
        async for event in stub.GenerateImages(request, metadata=metadata):
            if event.WhichOneof("event") == "image" and not first:
                first = time.perf_counter()
            elif event.WhichOneof("event") == "image_failed":
                raise RuntimeError(f"image failed: {event.image_failed}")
        if not first:
            raise RuntimeError("no image")
        return (first - start) * 1000

    return one


def spread_caller(stubs: Sequence[image_service_pb2_grpc.ImageServiceStub], tenant: str) -> One:
    """`gateway_caller`, each request on the next of `stubs` in turn (one
    connection each: worker processes share connections, not requests)."""
    ones = itertools.cycle([gateway_caller(s, tenant) for s in stubs])

    async def one() -> float:
        return await next(ones)()

    return one
