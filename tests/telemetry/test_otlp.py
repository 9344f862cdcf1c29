"""OTLP export really reaches a collector, and only when configured to."""

from __future__ import annotations

import pytest

from gateway.telemetry.instruments import IMAGES, POLICY_DECISIONS
from gateway.telemetry.sdk import TelemetryConfig
from tests.telemetry.conftest import MakeTelemetry
from tests.telemetry.support import IMAGE_LABELS, OtlpCollector


def _emit(make_telemetry: MakeTelemetry, config: TelemetryConfig) -> None:
    telemetry = make_telemetry(config)
    with telemetry.tracer.start_as_current_span("Generate"):
        telemetry.instruments.image(**IMAGE_LABELS, outcome="delivered")
    telemetry.shutdown()  # flushes: the exports are done when it returns


@pytest.mark.parametrize("otlp", [True, None], ids=["explicit", "from-environment"])
def test_span_and_metric_reach_the_collector(
    make_telemetry: MakeTelemetry,
    collector: OtlpCollector,
    monkeypatch: pytest.MonkeyPatch,
    otlp: bool | None,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")

    _emit(make_telemetry, TelemetryConfig(service_name="gw-under-test", otlp=otlp))

    assert "Generate" in collector.span_names()
    assert IMAGES in collector.metric_names()
    assert collector.service_names() == {"gw-under-test"}


def test_a_signal_specific_endpoint_turns_on_that_signal_only(
    make_telemetry: MakeTelemetry, collector: OtlpCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.endpoint)

    _emit(make_telemetry, TelemetryConfig())

    assert collector.span_names() == {"Generate"}
    assert collector.metric_names() == set()


def test_otlp_false_overrides_the_environment(
    make_telemetry: MakeTelemetry, collector: OtlpCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)

    telemetry = make_telemetry(TelemetryConfig(otlp=False))
    with telemetry.tracer.start_as_current_span("Generate"):
        telemetry.instruments.policy_decision("deny-nsfw", "deny")
    telemetry.shutdown()

    assert collector.span_names() == set()
    assert POLICY_DECISIONS not in collector.metric_names()
