"""Spans and metrics through in-memory exporters, and the instruments' rules."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.telemetry import Instruments, size_class
from gateway.telemetry.instruments import (
    BUDGET_REMAINING,
    COST,
    IMAGES,
    REQUEST_DURATION,
    TIME_TO_FIRST_IMAGE,
)
from gateway.telemetry.sdk import IMAGE_BUCKETS_S, REQUEST_BUCKETS_S, Telemetry, TelemetryConfig
from tests.telemetry.conftest import MakeTelemetry
from tests.telemetry.support import IMAGE_LABELS, TENANT, record_one_of_each


def _points(reader: InMemoryMetricReader, name: str) -> Sequence[Any]:
    data = reader.get_metrics_data()
    if data is None:  # nothing recorded yet
        return []
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    return list(metric.data.data_points)
    return []


def test_spans_are_exported_with_the_service_name(
    in_memory: Telemetry, span_exporter: InMemorySpanExporter
) -> None:
    tracer = in_memory.tracer
    with tracer.start_as_current_span("Generate"), tracer.start_as_current_span("policy"):
        pass

    spans = {span.name: span for span in span_exporter.get_finished_spans()}
    assert set(spans) == {"Generate", "policy"}
    assert spans["policy"].parent is not None
    assert spans["policy"].parent.span_id == spans["Generate"].context.span_id
    assert spans["Generate"].resource.attributes["service.name"] == "titan-image-gateway"


def test_every_instrument_is_readable(
    in_memory: Telemetry, metric_reader: InMemoryMetricReader
) -> None:
    record_one_of_each(in_memory.instruments)

    [image] = _points(metric_reader, IMAGES)
    assert dict(image.attributes) == {**IMAGE_LABELS, "outcome": "delivered"}
    assert image.value == 1
    [cost] = _points(metric_reader, COST)
    assert dict(cost.attributes) == IMAGE_LABELS
    assert cost.value == pytest.approx(0.08)
    [duration] = _points(metric_reader, REQUEST_DURATION)
    assert dict(duration.attributes) == {
        "rpc.method": "titan.gateway.v1.ImageService/Generate",
        "rpc.response.status_code": "OK",
        "tenant": TENANT,
    }
    assert tuple(duration.explicit_bounds) == REQUEST_BUCKETS_S
    [first_image] = _points(metric_reader, TIME_TO_FIRST_IMAGE)
    assert tuple(first_image.explicit_bounds) == IMAGE_BUCKETS_S


def test_budget_gauge_observes_the_callback_supplied_later(
    in_memory: Telemetry, metric_reader: InMemoryMetricReader
) -> None:
    assert _points(metric_reader, BUDGET_REMAINING) == []

    in_memory.instruments.observe_budgets(lambda: [(TENANT, "month", 12_345_678)])
    [point] = _points(metric_reader, BUDGET_REMAINING)
    assert dict(point.attributes) == {"tenant": TENANT, "period": "month"}
    assert point.value == 12.345678

    in_memory.instruments.observe_budgets(lambda: [(TENANT, "day", 0), ("globex", "day", 5)])
    points = _points(metric_reader, BUDGET_REMAINING)
    assert {(p.attributes["tenant"], p.attributes["period"], p.value) for p in points} == {
        (TENANT, "day", 0.0),
        ("globex", "day", 0.000005),
    }


def test_cost_in_dollars_agrees_with_the_micro_dollar_ledger(
    make_telemetry: MakeTelemetry, metric_reader: InMemoryMetricReader
) -> None:
    telemetry = make_telemetry(metric_readers=[metric_reader])
    rng = random.Random(7)
    charges = [rng.randrange(1, 200_000) for _ in range(20_000)]
    for micros in charges:
        telemetry.instruments.cost(micros, **IMAGE_LABELS)

    [point] = _points(metric_reader, COST)
    assert Decimal(str(round(point.value, 6))) == Decimal(sum(charges)) / 1_000_000


def test_string_enums_become_plain_label_values(
    in_memory: Telemetry, metric_reader: InMemoryMetricReader
) -> None:
    from gateway.enums import Quality, TaskType

    labels = {**IMAGE_LABELS, "task_type": TaskType.INPAINTING, "quality": Quality.STANDARD}
    in_memory.instruments.image(**labels, outcome="failed")

    [point] = _points(metric_reader, IMAGES)
    assert point.attributes["task_type"] == "INPAINTING"
    assert type(point.attributes["quality"]) is str


def test_instruments_work_without_any_sdk() -> None:
    instruments = Instruments.create()  # the global, no-op provider in this test
    record_one_of_each(instruments)


def test_record_prompts_is_off_unless_asked() -> None:
    assert TelemetryConfig().record_prompts is False


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (256, 256, "<=512x512"),
        (512, 512, "<=512x512"),
        (768, 256, "<=512x512"),  # 196,608 px
        (512, 513, "<=1024x1024"),
        (1024, 1024, "<=1024x1024"),
        (2048, 512, "<=1024x1024"),  # 1,048,576 px
        (1024, 1025, ">1024x1024"),
        (1408, 1408, ">1024x1024"),
    ],
)
def test_size_class_buckets_by_pixels(width: int, height: int, expected: str) -> None:
    assert size_class(width, height) == expected


def test_two_telemetries_side_by_side_do_not_share_data(
    make_telemetry: MakeTelemetry,
) -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    make_telemetry(metric_readers=[first]).instruments.moderation_block("violence")
    make_telemetry(metric_readers=[second])

    assert _points(first, "titan_gateway.moderation.blocks")
    assert not _points(second, "titan_gateway.moderation.blocks")
