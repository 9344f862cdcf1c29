"""The ledger's PostgreSQL stops answering under a running gateway: requests
fail fast with UNAVAILABLE, gRPC health says NOT_SERVING, and both recover by
themselves when the database answers again. (On main requests hung until the
caller's deadline while health said SERVING.)"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.auth import DEV_KEY, bearer
from tests.ledger.pg import create_database, drop_database, new_database_name
from tests.stores.proxy import HangingProxy
from tests.streams import collect
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

TIMEOUT_S = 0.5
REQUEST = pb.GenerateImagesRequest(
    text_to_image=tasks.TextToImageTask(text="a red fox"),
    config=tasks.ImageGenerationConfig(width=512, height=512),
)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(stub: health_pb2_grpc.HealthStub) -> int:
    return (await stub.Check(health_pb2.HealthCheckRequest())).status


async def _until(stub: health_pb2_grpc.HealthStub, status: int, within_s: float) -> float:
    began = time.monotonic()
    while await _status(stub) != status:
        assert time.monotonic() - began < within_s, f"health never became {status}"
        await asyncio.sleep(0.05)
    return time.monotonic() - began


@pytest.fixture
async def proxied_ledger_url():
    name = new_database_name()
    dsn = await create_database(name)
    proxy = HangingProxy("127.0.0.1", 5432)
    await proxy.start()
    try:
        yield dsn.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"), proxy
    finally:
        proxy.resume()
        await proxy.close()
        await drop_database(name)


async def test_a_hung_ledger_fails_fast_and_turns_health_not_serving(
    make_gateway, proxied_ledger_url
) -> None:
    url, proxy = proxied_ledger_url
    assert "127.0.0.1:5432" not in url
    gateway = await make_gateway(
        ledger_url=url, store_timeout_s=TIMEOUT_S, store_probe_interval_s=0.1
    )
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_KEY)) as ch:
        images = image_service_pb2_grpc.ImageServiceStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        assert len((await collect(images.GenerateImages(REQUEST))).images) == 1
        assert await _status(health) == SERVING

        proxy.hang()
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(images.GenerateImages(REQUEST, timeout=30))
        took = time.monotonic() - began
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert took < 10 * TIMEOUT_S, f"the request took {took:.1f}s with the store hung"
        assert await _status(health) == NOT_SERVING
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as fast:  # fails fast while down
            await collect(images.GenerateImages(REQUEST, timeout=30))
        assert fast.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - began < TIMEOUT_S

        proxy.resume()
        await _until(health, SERVING, within_s=30)
        assert len((await collect(images.GenerateImages(REQUEST))).images) == 1
