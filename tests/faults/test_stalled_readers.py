"""Readers that stop reading: what they hold is bounded, and images that
finished but were never written are still billed when the caller leaves,
like images in flight (the README's rule). (On main, 40 stalled streams grew
the process by 800 MB, and finished unread images were neither billed nor
delivered.)"""

from __future__ import annotations

import asyncio
import time

import grpc

from tests.auth import DEV_KEY, bearer
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

PRICE_1024 = 10_000  # Titan v2, 1024x1024 standard
MIB = 1024 * 1024
# A reader that really stops: no BDP probing to grow the window, and a small
# initial window, so its transport does not keep reading on its behalf.
STALLED = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 65_535)]


def _request(n: int, seed: int) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(number_of_images=n, width=1024, height=1024, seed=seed),
    )


async def _settle_down(gateway, expected: int) -> int:
    for _ in range(200):  # bounded: up to ~10 s
        if await gateway.ledger.settled_total("dev") == expected:
            break
        await asyncio.sleep(0.05)
    return await gateway.ledger.settled_total("dev")


async def test_finished_unread_images_are_billed_when_the_caller_leaves(make_gateway) -> None:
    gateway = await make_gateway()
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_KEY)) as ch:
        call = image_service_pb2_grpc.ImageServiceStub(ch).GenerateImages(_request(5, 1))
        assert (await call.read()).WhichOneof("event") == "accepted"
        for _ in range(200):  # bounded: every image finished at the backend
            if gateway.emulator.stats.images_returned == 5:
                break
            await asyncio.sleep(0.05)
        assert gateway.emulator.stats.images_returned == 5
        await asyncio.sleep(0.2)
        call.cancel()
    # Each image was either written (settled first) or is billed at the cancel.
    assert await _settle_down(gateway, 5 * PRICE_1024) == 5 * PRICE_1024


async def test_a_stream_that_is_not_drained_starts_no_more_calls_than_its_budget() -> None:
    """The mechanism, without a transport in between: the fan-out's consumer
    takes image 0 and stops; the calls after it wait for the stream budget."""
    from gateway.dialects import GeneratedImage
    from gateway.fanout import FanOut
    from tests.backends.support import make_job

    started: list[int] = []

    class Backend:
        async def generate_one(self, job, index, *, timeout):  # noqa: ASYNC109
            started.append(index)
            return GeneratedImage(b"x" * 1000)

        async def close(self) -> None:
            pass

    fanout = FanOut(Backend(), 8, buffer_bytes=64 * MIB, stream_buffer_bytes=MIB)
    job = make_job(count=5, width=1024, height=1024)  # 3 MiB each: one at a time
    outcomes = fanout.run(job, deadline=time.monotonic() + 30)
    first = await anext(outcomes)  # taken, never released: the reader stalled
    await asyncio.sleep(0.2)
    assert started == [first.index]
    first.release()  # written at last
    second = await anext(outcomes)
    assert len(started) == 2
    second.release()
    await outcomes.aclose()


async def test_stalled_readers_together_hold_at_most_the_process_buffer(make_gateway) -> None:
    gateway = await make_gateway(stream_buffer_bytes=32 * MIB, send_buffer_bytes=8 * MIB)
    async with grpc.aio.insecure_channel(
        gateway.address, options=STALLED, interceptors=bearer(DEV_KEY)
    ) as ch:
        stub = image_service_pb2_grpc.ImageServiceStub(ch)
        calls = [stub.GenerateImages(_request(5, 10 * i)) for i in range(8)]
        for call in calls:
            assert (await call.read()).WhichOneof("event") == "accepted"
        await asyncio.sleep(2.0)
        started = gateway.emulator.stats.calls
        async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_KEY)) as ok:
            other = image_service_pb2_grpc.ImageServiceStub(ok)  # others are still served
            estimate = await other.EstimateCost(pb.EstimateCostRequest(request=_request(1, 999)))
        for call in calls:
            call.cancel()
    assert estimate.allowed
    # 8 MiB holds two 3 MiB images; images written to the transport give
    # their share back, so a few more start, never the 40 asked for.
    assert started <= 12, started
