"""Streaming behaviour: order of arrival, real fan-out, partial failure,
cancellation, content filters and deadlines, over a real channel."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from gateway.emulator import EmulatorConfig
from tests.auth import DEV_KEY, bearer
from tests.streams import collect, error_reason
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks


def text_request(prompt: str = "a red fox", n: int = 1, seed: int = 42) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text=prompt),
        config=tasks.ImageGenerationConfig(number_of_images=n, width=512, height=512, seed=seed),
    )


async def test_each_image_is_sent_when_it_is_ready_not_in_index_order(gateway, stub) -> None:
    # Image 2 (seed 44) is instant, images 0 and 1 take 1.5 s.
    gateway.emulator.config = EmulatorConfig(seed_latency_ms={42: 1500, 43: 1500, 44: 0})
    result = await collect(stub.GenerateImages(text_request(n=3)))
    assert result.order[0] == 2
    assert sorted(result.order) == [0, 1, 2]
    assert result.completed.images_delivered == 3


async def test_four_images_are_four_backend_calls_in_flight_at_once(gateway, stub) -> None:
    gateway.emulator.hold()
    call = stub.GenerateImages(text_request(n=4))
    consumer = asyncio.create_task(collect(call))
    try:
        reached = await gateway.emulator.wait_in_flight(4, timeout=10)
    finally:
        gateway.emulator.release()
    result = await consumer
    assert reached, f"only {gateway.emulator.stats.max_in_flight} calls were in flight"
    assert gateway.emulator.stats.max_in_flight == 4
    assert sorted(result.images) == [0, 1, 2, 3]


async def test_one_failed_image_does_not_stop_the_others(make_gateway) -> None:
    gateway = await make_gateway(backend_max_attempts=2)
    gateway.emulator.config = EmulatorConfig(fault_seeds=frozenset({43}))
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_KEY)) as channel:
        stub = pb_stub(channel)
        result = await collect(stub.GenerateImages(text_request(n=3)))
    assert sorted(result.images) == [0, 2]
    assert result.failures[1].reason == pb.FAILURE_REASON_BACKEND_ERROR
    assert result.failures[1].seed == 43
    assert (result.completed.images_delivered, result.completed.images_failed) == (2, 1)


async def test_output_filter_fails_the_images_with_the_reason(stub) -> None:
    result = await collect(stub.GenerateImages(text_request("a filteredterm scene", n=2)))
    assert result.images == {}
    assert {f.reason for f in result.failures.values()} == {pb.FAILURE_REASON_CONTENT_FILTERED}
    assert "content filters" in result.failures[0].message
    assert result.completed.images_failed == 2


async def test_input_filter_is_permission_denied_and_the_server_keeps_serving(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(stub.GenerateImages(text_request("a blockedterm scene")))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "content filters" in caught.value.details()
    assert error_reason(caught.value) == "CONTENT_FILTERED"
    result = await collect(stub.GenerateImages(text_request()))
    assert len(result.images) == 1


async def test_persistent_throttling_ends_with_unavailable(make_gateway) -> None:
    gateway = await make_gateway(backend_max_attempts=2)
    gateway.emulator.config = EmulatorConfig(images_per_minute=1)
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_KEY)) as channel:
        stub = pb_stub(channel)
        await collect(stub.GenerateImages(text_request()))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(text_request(seed=1)))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_cancellation_cancels_the_backend_calls(gateway, stub) -> None:
    gateway.emulator.hold()
    try:
        call = stub.GenerateImages(text_request(n=3))
        assert await gateway.emulator.wait_in_flight(3, timeout=10)
        call.cancel()
        for _ in range(200):  # bounded: up to 10 s
            if gateway.emulator.stats.in_flight == 0:
                break
            await asyncio.sleep(0.05)
        assert gateway.emulator.stats.in_flight == 0
    finally:
        gateway.emulator.release()


async def test_the_callers_deadline_bounds_the_backend_calls(gateway, stub) -> None:
    gateway.emulator.config = EmulatorConfig(latency_ms=5000)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(stub.GenerateImages(text_request(), timeout=0.5))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def pb_stub(channel: grpc.aio.Channel) -> image_service_pb2_grpc.ImageServiceStub:
    return image_service_pb2_grpc.ImageServiceStub(channel)


async def test_an_unexpected_backend_bug_is_internal_and_the_server_keeps_serving(
    gateway, stub, monkeypatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> bytes:
        raise KeyError("a bug")

    monkeypatch.setattr(gateway.backend, "generate_one", broken)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(stub.GenerateImages(text_request()))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    monkeypatch.undo()
    assert len((await collect(stub.GenerateImages(text_request()))).images) == 1
