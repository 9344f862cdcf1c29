"""The one place that installs the OpenTelemetry SDK (STYLE rule 9).

Everything else in the gateway talks to the OpenTelemetry API; the server's
start-up calls `configure_telemetry` once and hands the returned tracer and
`Instruments` to the servicer. `Telemetry.shutdown` flushes what is buffered
and stops the ``/metrics`` server, so the drain on SIGTERM must call it.

Providers are *not* installed globally unless asked (`set_global`): OTel
refuses to replace a global provider once set, so tests build several
independent `Telemetry` objects side by side and use what each returns.

The resource is the SDK's own (`Resource.create`): the standard
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` variables (and any
``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS``) apply, and
`TelemetryConfig.service_name` is only the default ``service.name`` for when
they name none.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from prometheus_client import CollectorRegistry, start_http_server

from gateway.telemetry.instruments import (
    BACKEND_DURATION,
    INSTRUMENTATION_NAME,
    REQUEST_DURATION,
    TIME_TO_FIRST_IMAGE,
    Instruments,
    get_tracer,
)

#: RPC durations: from fast refusals (auth, validation: milliseconds) to
#: multi-image generations (Titan takes a few seconds per image).
REQUEST_BUCKETS_S: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0,
)  # fmt: skip
#: One image (backend call, time to first image): dense between 1 and 20 s.
IMAGE_BUCKETS_S: Final = (
    0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0,
    12.5, 15.0, 20.0, 25.0, 30.0, 45.0, 60.0, 90.0, 120.0,
)  # fmt: skip

_OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
_OTLP_TRACES_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_OTLP_METRICS_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
_HTTP_STOP_TIMEOUT_S: Final = 5.0
#: What `Resource.create` names a service nothing else named (plus ":python…").
_UNKNOWN_SERVICE: Final = "unknown_service"


@dataclass(frozen=True)
class TelemetryConfig:
    """What to export, and where."""

    #: ``service.name`` unless ``OTEL_SERVICE_NAME`` or
    #: ``OTEL_RESOURCE_ATTRIBUTES`` sets one (they win, as everywhere in OTel).
    service_name: str = "titan-image-gateway"
    #: Serve ``/metrics`` on ``prometheus_host:<port>``; 0 picks a free port.
    prometheus_port: int | None = None
    #: The address ``/metrics`` listens on: loopback by default, ``0.0.0.0``
    #: (or ``::``) in a container so that the scraper can reach it.
    prometheus_host: str = "127.0.0.1"
    #: Console span and metric exporters, for local debugging.
    console: bool = False
    #: Read by the servicer: prompts go into spans only when this is True.
    record_prompts: bool = False
    #: None: on iff an OTLP endpoint variable is set (per signal: the generic
    #: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or the traces/metrics-specific one).
    #: The exporters read the other standard ``OTEL_EXPORTER_OTLP_*`` variables.
    otlp: bool | None = None
    metric_export_interval_ms: int = 10_000
    #: Read by the start-up when it calls `gateway.telemetry.configure_logging`.
    json_logs: bool = False


class Telemetry:
    """The configured providers, the gateway's tracer and instruments, and the
    ``/metrics`` server; `shutdown` releases them all."""

    def __init__(
        self,
        config: TelemetryConfig,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        metrics_server: _MetricsServer | None,
    ) -> None:
        self.config = config
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer: trace.Tracer = get_tracer(tracer_provider)
        self.instruments = Instruments.create(meter_provider.get_meter(INSTRUMENTATION_NAME))
        self._metrics_server = metrics_server
        self._lock = threading.Lock()
        self._shut_down = False

    @property
    def prometheus_port(self) -> int | None:
        """The port ``/metrics`` is bound to (the real one when 0 was asked)."""
        return self._metrics_server.port if self._metrics_server else None

    @property
    def metrics_url(self) -> str | None:
        """``http://host:port/metrics`` as bound, or None without ``/metrics``."""
        if self._metrics_server is None:
            return None
        host = self.config.prometheus_host
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self._metrics_server.port}/metrics"

    def shutdown(self) -> None:
        """Stop scrapes, then flush and shut down the providers. Idempotent."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        if self._metrics_server is not None:
            self._metrics_server.stop()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def configure_telemetry(
    config: TelemetryConfig,
    *,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    set_global: bool = True,
) -> Telemetry:
    """Build the providers for `config`, plus the given extra span exporters
    (exported synchronously, for tests) and metric readers. With `set_global`
    they also become the process-wide providers, which OTel allows once."""
    resource = _resource(config.service_name)
    tracer_provider = _tracer_provider(config, resource, span_exporters)
    readers = [*metric_readers, *_exporting_readers(config)]
    registry = None
    if config.prometheus_port is not None:
        # A registry of our own: readers on prometheus_client's global one
        # would mix the series of every Telemetry in the process.
        registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=registry))
    meter_provider = MeterProvider(metric_readers=readers, resource=resource, views=_views())
    metrics_server = None
    if registry is not None and config.prometheus_port is not None:
        try:
            metrics_server = _MetricsServer.start(
                config.prometheus_host, config.prometheus_port, registry
            )
        except OSError:  # typically the port is taken: release what was built
            tracer_provider.shutdown()
            meter_provider.shutdown()
            raise
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return Telemetry(config, tracer_provider, meter_provider, metrics_server)


def _resource(default_service_name: str) -> Resource:
    """The SDK's resource from the environment, named `default_service_name`
    only when nothing there names the service.

    Passing ``{service.name: ...}`` to `Resource.create` would override
    ``OTEL_SERVICE_NAME``: explicit attributes win over the detectors. So the
    default is merged in only over the SDK's ``unknown_service`` placeholder.
    """
    resource = Resource.create()
    name = str(resource.attributes.get(SERVICE_NAME, ""))
    if name == _UNKNOWN_SERVICE or name.startswith(f"{_UNKNOWN_SERVICE}:"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    return resource


def _tracer_provider(
    config: TelemetryConfig, resource: Resource, span_exporters: Sequence[SpanExporter]
) -> TracerProvider:
    provider = TracerProvider(resource=resource)
    for exporter in span_exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if _otlp_enabled(config.otlp, _OTLP_TRACES_ENDPOINT):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if config.console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider


def _exporting_readers(config: TelemetryConfig) -> list[MetricReader]:
    interval = config.metric_export_interval_ms
    readers: list[MetricReader] = []
    if _otlp_enabled(config.otlp, _OTLP_METRICS_ENDPOINT):
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(), interval))
    if config.console:
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), interval))
    return readers


def _otlp_enabled(otlp: bool | None, signal_endpoint_variable: str) -> bool:
    if otlp is not None:
        return otlp
    return bool(os.environ.get(_OTLP_ENDPOINT) or os.environ.get(signal_endpoint_variable))


def _views() -> list[View]:
    def buckets(name: str, boundaries: Sequence[float]) -> View:
        return View(
            instrument_name=name,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=boundaries),
        )

    return [
        buckets(REQUEST_DURATION, REQUEST_BUCKETS_S),
        buckets(TIME_TO_FIRST_IMAGE, IMAGE_BUCKETS_S),
        buckets(BACKEND_DURATION, IMAGE_BUCKETS_S),
    ]


class _MetricsServer:
    """prometheus_client's threaded WSGI server for ``/metrics``, kept so it
    can be stopped (its helper only ever starts one)."""

    def __init__(self, httpd: Any, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.port: int = int(httpd.server_address[1])

    @classmethod
    def start(cls, host: str, port: int, registry: CollectorRegistry) -> _MetricsServer:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
        return cls(httpd, thread)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(_HTTP_STOP_TIMEOUT_S)
