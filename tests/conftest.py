"""Shared fixtures: a real gateway on port 0 (embedded emulator, real
aiobotocore client over HTTP) and a real gRPC channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.server import RunningGateway, start_gateway
from gateway.settings import load_settings
from tests.auth import DEV_KEY, bearer
from titan.gateway.v1 import image_service_pb2_grpc

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]

GatewayFactory = Callable[..., Any]
TITAN_V2 = "amazon.titan-image-generator-v2:0"


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Start gateways with settings overrides; all are stopped at teardown."""
    started: list[RunningGateway] = []

    async def make(telemetry: Any = None, **overrides: Any) -> RunningGateway:
        # The suite predating the Stability models speaks Titan v2 when a
        # request names no model; tests of the shipped defaults pass
        # default_model_id=None.
        overrides.setdefault("default_model_id", TITAN_V2)
        settings = load_settings(listen="127.0.0.1:0", data_dir=tmp_path, **overrides)
        gateway = await start_gateway(settings, telemetry=telemetry)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        await gateway.stop(0)


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> RunningGateway:
    gw: RunningGateway = await make_gateway()
    return gw


@pytest.fixture
async def channel(gateway: RunningGateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(
        gateway.address, options=CHANNEL_OPTIONS, interceptors=bearer(DEV_KEY)
    ) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> image_service_pb2_grpc.ImageServiceStub:
    return image_service_pb2_grpc.ImageServiceStub(channel)
