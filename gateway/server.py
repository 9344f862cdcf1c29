"""Composition: the only place that names concrete classes.

`start_gateway(settings)` builds the backend (Bedrock through aiobotocore,
pointed at AWS or at the embedded emulator), the servicer, health and
reflection, and starts a grpc.aio server. `serve()` runs it until SIGINT or
SIGTERM, then drains in-flight streams for `shutdown_grace_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.admin import AdminService
from gateway.auth import AuthInterceptor
from gateway.backends.bedrock import BedrockBackend, BedrockConfig
from gateway.emulator import Emulator, EmulatorConfig
from gateway.fanout import FanOut
from gateway.policy_store import PolicyStore
from gateway.service import ImageService
from gateway.settings import Settings
from titan.gateway.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    image_service_pb2,
    image_service_pb2_grpc,
)

log = logging.getLogger(__name__)

# Five 5 MB input images plus framing: Titan's own body cap is 25 MB of base64.
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
SERVICE_NAME = image_service_pb2.DESCRIPTOR.services_by_name["ImageService"].full_name
ADMIN_SERVICE_NAME = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


@dataclass
class RunningGateway:
    """A started gateway; `stop()` shuts everything down in reverse order."""

    server: grpc.aio.Server
    host: str
    port: int
    backend: BedrockBackend
    policies: PolicyStore
    emulator: Emulator | None = None
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @property
    def address(self) -> str:
        """Where a client on this machine reaches the server."""
        wildcard = self.host in ("", "0.0.0.0", "[::]")
        return f"{'127.0.0.1' if wildcard else self.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(grace)
        await self._stack.aclose()


async def start_gateway(settings: Settings) -> RunningGateway:
    """Build and start everything `settings` describe."""
    stack = AsyncExitStack()
    policies = PolicyStore(settings.policy_file)
    try:
        emulator, endpoint_url = await _start_emulator(settings, stack)
        backend = BedrockBackend(
            BedrockConfig(
                region=settings.bedrock_region,
                endpoint_url=endpoint_url,
                max_connections=settings.backend_max_connections,
                max_attempts=settings.backend_max_attempts,
            )
        )
        await backend.start()
        stack.push_async_callback(backend.close)
        server, port = await _start_server(settings, backend, policies)
        watcher = asyncio.create_task(policies.watch(settings.policy_poll_s))
        stack.push_async_callback(_cancel, watcher)
    except BaseException:
        await stack.aclose()
        raise
    host = settings.listen.rsplit(":", 1)[0]
    return RunningGateway(server, host, port, backend, policies, emulator, stack)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _start_emulator(
    settings: Settings, stack: AsyncExitStack
) -> tuple[Emulator | None, str | None]:
    if settings.backend != "emulator":
        return None, settings.bedrock_endpoint_url
    emu = settings.emulator
    emulator = Emulator(
        EmulatorConfig(
            latency_ms=emu.latency_ms,
            seed_latency_ms=emu.seed_latency_ms,
            images_per_minute=emu.images_per_minute,
            fault_rate=emu.fault_rate,
            input_block_terms=emu.input_block_terms,
            output_block_terms=emu.output_block_terms,
        )
    )
    url = await emulator.start("127.0.0.1", 0)
    stack.push_async_callback(emulator.stop)
    log.info("embedded Bedrock emulator at %s", url)
    return emulator, url


async def _start_server(
    settings: Settings, backend: BedrockBackend, policies: PolicyStore
) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(policies)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    service = ImageService(
        settings.registry(),
        policies,
        FanOut(backend, settings.backend_concurrency),
        settings.default_timeout_s,
    )
    image_service_pb2_grpc.add_ImageServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(AdminService(policies), server)  # type: ignore[no-untyped-call]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, ADMIN_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(settings.listen)
    if port == 0:
        raise OSError(f"cannot listen on {settings.listen}")
    await server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    await health_servicer.set("", serving)
    await health_servicer.set(SERVICE_NAME, serving)
    return server, port


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then drain in-flight streams and stop."""
    gateway = await start_gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.policies.reload)
    print(f"Titan Image Gateway listening on {gateway.address}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("draining for up to %.1fs", settings.shutdown_grace_s)
        await gateway.stop(settings.shutdown_grace_s)
