"""What the platform configures: the service's resource through the standard
OTEL_* variables, the /metrics address through the gateway's settings, and
the units of every instrument."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.server import telemetry_config
from gateway.settings import load_settings
from gateway.telemetry.sdk import Telemetry, TelemetryConfig
from tests.telemetry.conftest import MakeTelemetry
from tests.telemetry.support import record_one_of_each, scrape


def _resource(make_telemetry: MakeTelemetry, config: TelemetryConfig | None = None) -> Any:
    spans = InMemorySpanExporter()
    telemetry = make_telemetry(config, span_exporters=[spans])
    with telemetry.tracer.start_as_current_span("Generate"):
        pass
    (span,) = spans.get_finished_spans()
    return span.resource.attributes


def test_the_service_name_defaults_to_the_gateways(make_telemetry: MakeTelemetry) -> None:
    attributes = _resource(make_telemetry)
    assert attributes["service.name"] == "titan-image-gateway"
    assert attributes["telemetry.sdk.name"] == "opentelemetry"


def test_otel_service_name_wins_over_the_default(
    make_telemetry: MakeTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "image-gateway-eu")
    attributes = _resource(make_telemetry, TelemetryConfig(service_name="not-this"))
    assert attributes["service.name"] == "image-gateway-eu"


def test_otel_resource_attributes_are_honoured(
    make_telemetry: MakeTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment.name=prod,k8s.pod.name=titan-gateway-0,service.namespace=images",
    )
    attributes = _resource(make_telemetry)
    assert attributes["deployment.environment.name"] == "prod"
    assert attributes["k8s.pod.name"] == "titan-gateway-0"
    assert attributes["service.namespace"] == "images"
    assert attributes["service.name"] == "titan-image-gateway"  # they named none

    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    assert _resource(make_telemetry)["service.name"] == "from-attributes"


def test_the_metrics_host_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert telemetry_config(load_settings()).prometheus_host == "127.0.0.1"
    monkeypatch.setenv("TITAN_GW_TELEMETRY__PROMETHEUS_HOST", "0.0.0.0")
    monkeypatch.setenv("TITAN_GW_TELEMETRY__PROMETHEUS_PORT", "9464")
    config = telemetry_config(load_settings())
    assert (config.prometheus_host, config.prometheus_port) == ("0.0.0.0", 9464)


def test_metrics_listen_on_loopback_unless_told_otherwise(make_telemetry: MakeTelemetry) -> None:
    loopback = make_telemetry(TelemetryConfig(prometheus_port=0))
    assert loopback.metrics_url == f"http://127.0.0.1:{loopback.prometheus_port}/metrics"

    everywhere = make_telemetry(TelemetryConfig(prometheus_port=0, prometheus_host="0.0.0.0"))
    assert everywhere.prometheus_port
    assert everywhere.metrics_url == f"http://0.0.0.0:{everywhere.prometheus_port}/metrics"
    record_one_of_each(everywhere.instruments)
    assert scrape(everywhere.prometheus_port)  # 0.0.0.0 includes loopback


def test_an_ipv6_metrics_host_is_bracketed(make_telemetry: MakeTelemetry) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    telemetry = make_telemetry(TelemetryConfig(prometheus_port=0, prometheus_host="::1"))
    assert telemetry.metrics_url == f"http://[::1]:{telemetry.prometheus_port}/metrics"


def test_without_metrics_there_is_no_url(make_telemetry: MakeTelemetry) -> None:
    assert make_telemetry(TelemetryConfig()).metrics_url is None


#: UCUM: seconds, and annotated counts. Money is the one exception ("USD",
#: ISO 4217; see gateway/telemetry/instruments.py).
EXPECTED_UNITS = {
    "titan_gateway.images": "{image}",
    "titan_gateway.cost": "USD",
    "titan_gateway.request.duration": "s",
    "titan_gateway.time_to_first_image": "s",
    "titan_gateway.backend.duration": "s",
    "titan_gateway.policy.decisions": "{decision}",
    "titan_gateway.moderation.blocks": "{request}",
    "titan_gateway.quota.refusals": "{request}",
    "titan_gateway.backend.retries": "{retry}",
    "titan_gateway.backend.throttles": "{response}",
    "titan_gateway.budget.remaining": "USD",
}


def test_every_instrument_has_its_unit(make_telemetry: MakeTelemetry) -> None:
    reader = InMemoryMetricReader()
    telemetry: Telemetry = make_telemetry(metric_readers=[reader])
    record_one_of_each(telemetry.instruments)
    data = reader.get_metrics_data()
    assert data is not None
    units = {
        metric.name: metric.unit
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert units == EXPECTED_UNITS
