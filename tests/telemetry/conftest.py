"""Fixtures for the telemetry tests: an environment without the machine's
OTLP settings, and telemetry objects that are always shut down."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.telemetry.sdk import Telemetry, TelemetryConfig, configure_telemetry
from tests.telemetry.support import OtlpCollector

MakeTelemetry = Callable[..., Telemetry]


@pytest.fixture(autouse=True)
def _no_ambient_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's or CI's OTEL_* variables must not turn exporters on."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_telemetry() -> Iterator[MakeTelemetry]:
    """configure_telemetry(..., set_global=False); everything made is shut down."""
    made: list[Telemetry] = []

    def make(config: TelemetryConfig | None = None, **kwargs: object) -> Telemetry:
        kwargs.setdefault("set_global", False)
        telemetry = configure_telemetry(config or TelemetryConfig(), **kwargs)  # type: ignore[arg-type]
        made.append(telemetry)
        return telemetry

    yield make
    for telemetry in made:
        telemetry.shutdown()


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def in_memory(
    make_telemetry: MakeTelemetry,
    span_exporter: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
) -> Telemetry:
    return make_telemetry(span_exporters=[span_exporter], metric_readers=[metric_reader])


@pytest.fixture
def prometheus(make_telemetry: MakeTelemetry) -> Telemetry:
    return make_telemetry(TelemetryConfig(prometheus_port=0))


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    server = OtlpCollector()
    server.start()
    yield server
    server.stop()
