"""Shared pieces of the benchmarks: the bare-gRPC baseline."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


async def bare_unary_us(calls: int) -> float:
    """Mean µs of one unary call to a bare grpc.aio server (health Check) on loopback."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            for _ in range(50):  # warm-up
                await stub.Check(request)
            start = time.perf_counter()
            for _ in range(calls):
                await stub.Check(request)
            return (time.perf_counter() - start) / calls * 1e6
    finally:
        await server.stop(0)
