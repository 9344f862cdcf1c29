"""A burst of new calls is held until the event loop takes them, not cancelled
at random by grpc-core (its default soft limit, 1,000 pending calls, dropped
~1 in 10 of a 2,000-stream burst in the overhead bench)."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

BURST = 3000


async def _burst(address: str) -> list[BaseException]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        await stub.Check(health_pb2.HealthCheckRequest())  # connected before the burst
        calls = (stub.Check(health_pb2.HealthCheckRequest(), timeout=60) for _ in range(BURST))
        results = await asyncio.gather(*calls, return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]


async def test_a_burst_of_3000_calls_is_served_whole(make_gateway) -> None:
    gateway = await make_gateway(telemetry=None)
    assert await _burst(gateway.address) == []


async def test_the_pending_limit_is_what_keeps_them(make_gateway) -> None:
    """The same burst with a small limit loses calls: the setting reaches grpc-core."""
    gateway = await make_gateway(max_pending_requests=100)
    failed = await _burst(gateway.address)
    assert failed
    assert {f.code() for f in failed if isinstance(f, grpc.aio.AioRpcError)} == {
        grpc.StatusCode.CANCELLED
    }
