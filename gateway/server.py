"""Composition: the only place that names concrete classes.

`start_gateway(settings)` builds the backend (Bedrock through aiobotocore,
pointed at AWS or at the embedded emulator), the servicer, health and
reflection, and starts a grpc.aio server. `serve()` runs it until SIGINT or
SIGTERM, then stops it in this order (`RunningGateway.stop`):

1. health turns NOT_SERVING (load balancers stop sending new calls);
2. the server stops accepting RPCs and lets in-flight streams finish for
   `shutdown_grace_s`, then cancels the rest;
3. every clean-up those streams started (settle what was in flight, release
   reservations and slots, complete or free idempotency keys) runs to its end;
4. only then the stores, the backend and the emulator are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway.admin import AdminService
from gateway.admission import Admission
from gateway.alerts import AlertNotifier, open_alerts
from gateway.artifacts import ArtifactStore, open_artifacts
from gateway.auth import AuthInterceptor
from gateway.backends.bedrock import BedrockBackend, BedrockConfig
from gateway.emulator import Emulator, EmulatorConfig
from gateway.fanout import FanOut
from gateway.guardrail import GuardrailChecker
from gateway.idempotency import Idempotency
from gateway.ledger import Ledger, open_ledger
from gateway.limits import Limiter, open_limiter
from gateway.observe import Observer
from gateway.policy_store import PolicyStore
from gateway.provenance.detect import Detector
from gateway.provenance.marker import Marker
from gateway.reflection import enable_reflection, shipped_descriptor_set
from gateway.registry import ModelRegistry
from gateway.registry.catalog import price_table
from gateway.routing import LifecycleGuard
from gateway.service import ImageService
from gateway.settings import Settings
from gateway.startup import ListenError
from gateway.stores import grpc_health_reporter, guard_stores
from gateway.stream import Cleanups, Streamer
from gateway.telemetry.sdk import Telemetry, TelemetryConfig, configure_telemetry
from gateway.tls import load_tls
from gateway.tracing import TelemetryInterceptor
from gateway.usage import UsageService
from titan.gateway.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    image_service_pb2,
    image_service_pb2_grpc,
    usage_service_pb2,
    usage_service_pb2_grpc,
)

log = logging.getLogger(__name__)

# Five 5 MB input images plus framing: Titan's own body cap is 25 MB of base64.
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
# Clean-ups are a few ledger writes each; the store timeout bounds every one.
CLEANUP_TIMEOUT_S = 30.0
SERVICE_NAME = image_service_pb2.DESCRIPTOR.services_by_name["ImageService"].full_name
ADMIN_SERVICE_NAME = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
USAGE_SERVICE_NAME = usage_service_pb2.DESCRIPTOR.services_by_name["UsageService"].full_name
HEALTH_NAMES = ("", SERVICE_NAME, ADMIN_SERVICE_NAME, USAGE_SERVICE_NAME)


@dataclass
class RunningGateway:
    """A started gateway; `stop()` shuts everything down in reverse order."""

    server: grpc.aio.Server
    host: str
    port: int
    parts: Parts
    emulator: Emulator | None = None
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    health: health.aio.HealthServicer | None = None
    cleanups: Cleanups = field(default_factory=Cleanups)

    @property
    def address(self) -> str:
        """Where a client on this machine reaches the server."""
        wildcard = self.host in ("", "0.0.0.0", "[::]")
        return f"{'127.0.0.1' if wildcard else self.host}:{self.port}"

    @property
    def backend(self) -> BedrockBackend:
        return self.parts.backend

    @property
    def policies(self) -> PolicyStore:
        return self.parts.policies

    @property
    def ledger(self) -> Ledger:
        return self.parts.ledger

    async def stop(self, grace: float | None = None) -> None:
        """Shut down in the order the module docstring gives; never skips a step."""
        try:
            if self.health is not None:
                await self.health.enter_graceful_shutdown()  # NOT_SERVING, and stays so
            await self.server.stop(grace)
            left = await self.cleanups.wait(CLEANUP_TIMEOUT_S)
            if left:
                log.error("%d request clean-ups did not finish; their leases will expire", left)
        finally:
            await self._stack.aclose()


@dataclass(frozen=True)
class Parts:
    """The concrete parts one gateway process runs on."""

    settings: Settings
    registry: ModelRegistry
    policies: PolicyStore
    backend: BedrockBackend
    ledger: Ledger
    artifacts: ArtifactStore
    limiter: Limiter
    observer: Observer
    telemetry: Telemetry | None
    alerts: AlertNotifier = field(default_factory=AlertNotifier)
    # Watermarks and signs every delivered image (None: images go out as made).
    marker: Marker | None = None


async def start_gateway(
    settings: Settings, *, telemetry: Telemetry | None = None, reuse_port: bool = False
) -> RunningGateway:
    """Build and start everything `settings` describe.

    `telemetry` (tests pass one with in-memory exporters) is used as given and
    left running; without it one is configured from `settings.telemetry`
    (not as the process-global provider) and shut down by `stop()`.
    `reuse_port` lets the port be shared with the other worker processes
    (gateway/workers/); otherwise a port in use is a bind failure.
    """
    stack = AsyncExitStack()
    registry = settings.registry()
    policies = PolicyStore(settings.policy_file, price_table(registry))
    try:
        if telemetry is None and settings.telemetry.enabled:
            telemetry = configure_telemetry(telemetry_config(settings), set_global=False)
            stack.callback(telemetry.shutdown)
        observer = _observer(settings, telemetry)
        emulator, endpoint_url = await _start_emulator(settings, stack)
        backend = await _start_backend(settings, endpoint_url, stack, observer)
        ledger = await _start_ledger(settings, stack)
        artifacts = open_artifacts(settings.ledger_location(), settings.data_dir / "artifacts")
        await artifacts.start()
        stack.push_async_callback(artifacts.close)
        limiter = open_limiter(settings.limits_url, prefix=settings.limits_prefix)
        await limiter.start()
        stack.push_async_callback(limiter.close)
        health_servicer = health.aio.HealthServicer()
        # Every ledger and limiter call is time-bounded; an outage turns health
        # NOT_SERVING and fails calls fast until a probe finds the store back.
        ledger, limiter, store_health = guard_stores(
            ledger,
            limiter,
            timeout_s=settings.store_timeout_s,
            probe_interval_s=settings.store_probe_interval_s,
            on_change=grpc_health_reporter(health_servicer, HEALTH_NAMES),
        )
        alerts = await _start_alerts(settings, stack)
        marker = Marker.from_settings(settings.provenance, settings.data_dir)
        stack.callback(marker.close)
        parts = Parts(
            settings, registry, policies, backend, ledger, artifacts, limiter, observer, telemetry,
            alerts, marker,
        )  # fmt: skip
        server, port, admission, cleanups = await _start_server(parts, health_servicer, reuse_port)
        jobs = (policies.watch(settings.policy_poll_s), admission.sweep_forever(),
                store_health.watch())  # fmt: skip
        for job in jobs:
            stack.push_async_callback(_cancel, asyncio.create_task(job))
    except BaseException:
        await stack.aclose()
        raise
    host = settings.listen.rsplit(":", 1)[0]
    return RunningGateway(server, host, port, parts, emulator, stack, health_servicer, cleanups)


def _observer(settings: Settings, telemetry: Telemetry | None) -> Observer:
    if telemetry is None:
        return Observer.noop()
    observer = Observer(telemetry.tracer, telemetry.instruments, settings.telemetry.record_prompts)
    telemetry.instruments.observe_budgets(observer.budget_readings)
    return observer


async def _start_backend(
    settings: Settings, endpoint_url: str | None, stack: AsyncExitStack, observer: Observer
) -> BedrockBackend:
    backend = BedrockBackend(
        BedrockConfig(
            region=settings.bedrock_region,
            endpoint_url=endpoint_url,
            max_connections=settings.backend_max_connections,
            max_attempts=settings.backend_max_attempts,
        ),
        observer=observer,
    )
    await backend.start()
    stack.push_async_callback(backend.close)
    return backend


async def _start_ledger(settings: Settings, stack: AsyncExitStack) -> Ledger:
    url = settings.ledger_location()
    if url.startswith("sqlite:"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    ledger = open_ledger(url)
    await ledger.start()
    stack.push_async_callback(ledger.close)
    return ledger


async def _start_alerts(settings: Settings, stack: AsyncExitStack) -> AlertNotifier:
    # Closed before the stores (the stack unwinds in reverse), after every
    # request's clean-up: deliveries in flight get alerts.shutdown_grace_s.
    alerts = open_alerts(settings.alerts)
    await alerts.start()
    stack.push_async_callback(alerts.close, settings.alerts.shutdown_grace_s)
    return alerts


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _start_emulator(
    settings: Settings, stack: AsyncExitStack
) -> tuple[Emulator | None, str | None]:
    if settings.backend != "emulator":
        return None, settings.bedrock_endpoint_url
    # The settings' emulator section uses the emulator's own field names.
    emulator = Emulator(EmulatorConfig(**settings.emulator.model_dump()))
    url = await emulator.start("127.0.0.1", 0)
    stack.push_async_callback(emulator.stop)
    log.info("embedded Bedrock emulator at %s", url)
    return emulator, url


async def _start_server(
    parts: Parts, health_servicer: health.aio.HealthServicer, reuse_port: bool
) -> tuple[grpc.aio.Server, int, Admission, Cleanups]:
    settings, policies = parts.settings, parts.policies
    server = grpc.aio.server(
        # Telemetry outermost, so refusals by authentication are traced too.
        interceptors=[
            TelemetryInterceptor(parts.observer),
            AuthInterceptor(policies, client_certificates=settings.tls.client_ca_file is not None),
        ],
        options=[
            ("grpc.max_receive_message_length", settings.max_receive_message_bytes),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # One process per address: gRPC sets SO_REUSEPORT by default, and a
            # second gateway on a port in use would bind too and split traffic.
            # Only the workers of one supervisor share it (gateway/workers/),
            # after their parent found the port free of anyone else.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            # A burst of new calls waits here until the event loop takes it.
            # Past the soft limit grpc-core cancels calls at random (random
            # early detection), all of them past the hard one.
            ("grpc.server.max_pending_requests", settings.max_pending_requests),
            ("grpc.server.max_pending_requests_hard_limit", 2 * settings.max_pending_requests),
        ],
    )
    admission = Admission(
        parts.ledger,
        parts.limiter,
        lease_s=settings.reservation_lease_s,
        global_images_per_minute=settings.global_images_per_minute,
        observer=parts.observer,
        alerts=parts.alerts,
    )
    idempotency = Idempotency(
        parts.ledger,
        parts.artifacts,
        lease_s=settings.default_timeout_s + settings.reservation_lease_s,
    )
    fanout = FanOut(
        parts.backend,
        settings.backend_concurrency,
        buffer_bytes=settings.send_buffer_bytes,
        stream_buffer_bytes=settings.stream_buffer_bytes,
    )
    cleanups = Cleanups()
    streamer = Streamer(fanout, admission, idempotency, parts.observer, cleanups, parts.marker)
    service = ImageService(
        parts.registry,
        policies,
        admission,
        streamer,
        idempotency,
        GuardrailChecker(parts.backend.client),
        settings.default_timeout_s,
        parts.observer,
        # The emulator serves every model; real Bedrock refuses retired ones.
        LifecycleGuard(enforce=settings.backend == "bedrock"),
        Detector(parts.marker, parts.ledger, settings.provenance) if parts.marker else None,
    )
    image_service_pb2_grpc.add_ImageServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    admin = AdminService(
        policies,
        parts.ledger,
        parts.limiter,
        global_images_per_minute=settings.global_images_per_minute,
        registry=parts.registry,
    )
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)  # type: ignore[no-untyped-call]
    usage = UsageService(
        policies,
        parts.ledger,
        parts.limiter,
        global_images_per_minute=settings.global_images_per_minute,
    )
    usage_service_pb2_grpc.add_UsageServiceServicer_to_server(usage, server)  # type: ignore[no-untyped-call]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # grpc.reflection.v1 and v1alpha, with the protos' comments when the
    # build wrote its descriptor set (gateway/reflection.py).
    enable_reflection(
        server,
        (SERVICE_NAME, ADMIN_SERVICE_NAME, USAGE_SERVICE_NAME, health.SERVICE_NAME),
        shipped_descriptor_set(),
    )
    tls = load_tls(settings.tls)
    try:
        if tls is None:
            port = server.add_insecure_port(settings.listen)
        else:
            port = server.add_secure_port(settings.listen, tls.server_credentials())
    except RuntimeError:  # grpcio raises "Failed to bind" where older versions returned 0
        port = 0
    if port == 0:
        raise ListenError.for_address(settings.listen)
    await server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    for name in HEALTH_NAMES:
        await health_servicer.set(name, serving)
    return server, port, admission, cleanups


def telemetry_config(settings: Settings) -> TelemetryConfig:
    t = settings.telemetry
    return TelemetryConfig(
        prometheus_port=t.prometheus_port,
        prometheus_host=t.prometheus_host,
        console=t.console,
        record_prompts=t.record_prompts,
        metric_export_interval_ms=t.metric_export_interval_ms,
        json_logs=t.json_logs,
    )


async def serve(
    settings: Settings,
    *,
    reuse_port: bool = False,
    on_ready: Callable[[RunningGateway], None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM, then drain in-flight streams and stop.

    Once serving, `on_ready(gateway)` is called; without it the ready lines are
    printed (a worker process reports to its supervisor instead). `reuse_port`:
    see `start_gateway`.
    """
    telemetry = None
    if settings.telemetry.enabled:
        telemetry = configure_telemetry(telemetry_config(settings), set_global=True)
    try:
        await _serve(settings, telemetry, reuse_port, on_ready or _announce)
    finally:
        if telemetry is not None:
            telemetry.shutdown()


def _announce(gateway: RunningGateway) -> None:
    """The ready lines on stdout (scripts and tests wait for the first)."""
    print(f"Titan Image Gateway listening on {gateway.address}", flush=True)
    telemetry = gateway.parts.telemetry
    if telemetry is not None and telemetry.metrics_url is not None:
        print(f"metrics on {telemetry.metrics_url}", flush=True)


async def _serve(
    settings: Settings,
    telemetry: Telemetry | None,
    reuse_port: bool,
    on_ready: Callable[[RunningGateway], None],
) -> None:
    gateway = await start_gateway(settings, telemetry=telemetry, reuse_port=reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.policies.reload)
    try:
        on_ready(gateway)
        await stop.wait()
    finally:
        log.info("draining for up to %.1fs", settings.shutdown_grace_s)
        await gateway.stop(settings.shutdown_grace_s)
