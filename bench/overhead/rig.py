"""The rig of one run: the two processes and the caller's clients to them,
handed to every row, and a gateway of its own for each group of rows."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from bench.overhead.callers import (
    CHANNEL_OPTIONS,
    ROUTES,
    One,
    direct_caller,
    gateway_caller,
    stub,
)
from bench.overhead.processes import Process, start_gateway
from titan.gateway.v1 import image_service_pb2_grpc


@dataclass
class Bench:
    """The processes and clients of one run."""

    tmp: Path
    standin: Process
    gateway: Process
    session: aiohttp.ClientSession
    channel: grpc.aio.Channel
    options: argparse.Namespace

    @property
    def stub(self) -> image_service_pb2_grpc.ImageServiceStub:
        return stub(self.channel)

    def caller(self, route: str) -> One:
        tenant = ROUTES[route]
        if tenant is None:
            return direct_caller(self.session, self.standin.address)
        return gateway_caller(self.stub, tenant)

    async def configure(self, **settings: Any) -> None:
        """Set the stand-in's `image` and `delay_s` (see bench.standin)."""
        await configure_standin(self.session, self.standin, **settings)


async def configure_standin(
    session: aiohttp.ClientSession, standin: Process, **settings: Any
) -> None:
    """Set the stand-in's `image` and `delay_s` (see bench.standin)."""
    url = f"http://{standin.address}/_standin"
    async with session.post(url, json=settings) as answer:
        answer.raise_for_status()


async def with_gateway(
    tmp: Path,
    standin: Process,
    session: aiohttp.ClientSession,
    options: argparse.Namespace,
    work: Callable[[Bench], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """`work` against a gateway of its own, stopped afterwards."""
    gateway = await start_gateway(tmp, standin.address)
    try:
        async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
            return await work(Bench(tmp, standin, gateway, session, channel, options))
    finally:
        await gateway.stop()
