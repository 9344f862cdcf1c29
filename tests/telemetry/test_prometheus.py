"""The /metrics endpoint: names, labels and values as Prometheus sees them."""

from __future__ import annotations

import socket

import pytest

from gateway.telemetry.sdk import TelemetryConfig
from tests.telemetry.conftest import MakeTelemetry
from tests.telemetry.support import IMAGE_LABELS, TENANT, find, record_one_of_each, scrape


def test_image_and_cost_series_carry_their_labels_and_values(make_telemetry: MakeTelemetry) -> None:
    telemetry = make_telemetry(TelemetryConfig(prometheus_port=0))
    assert telemetry.prometheus_port
    instruments = telemetry.instruments
    instruments.image(**IMAGE_LABELS, outcome="delivered")
    instruments.image(**IMAGE_LABELS, outcome="delivered")
    instruments.image(**IMAGE_LABELS, outcome="filtered")
    instruments.cost(80_000, **IMAGE_LABELS)
    instruments.cost(80_001, **IMAGE_LABELS)

    samples = scrape(telemetry.prometheus_port)

    delivered = find(samples, "titan_gateway_images_total", **IMAGE_LABELS, outcome="delivered")
    filtered = find(samples, "titan_gateway_images_total", **IMAGE_LABELS, outcome="filtered")
    cost = find(samples, "titan_gateway_cost_USD_total", **IMAGE_LABELS)
    assert [s[2] for s in delivered] == [2.0]
    assert [s[2] for s in filtered] == [1.0]
    assert [round(s[2], 6) for s in cost] == [0.160001]
    assert "outcome" not in cost[0][1]


def test_budget_gauge_is_scraped_in_dollars(make_telemetry: MakeTelemetry) -> None:
    telemetry = make_telemetry(TelemetryConfig(prometheus_port=0))
    assert telemetry.prometheus_port
    telemetry.instruments.observe_budgets(lambda: [(TENANT, "month", 12_345_678)])

    samples = scrape(telemetry.prometheus_port)

    budget = find(samples, "titan_gateway_budget_remaining_USD", tenant=TENANT, period="month")
    assert [s[2] for s in budget] == [12.345678]


def test_latency_histograms_use_the_image_buckets(make_telemetry: MakeTelemetry) -> None:
    telemetry = make_telemetry(TelemetryConfig(prometheus_port=0))
    assert telemetry.prometheus_port
    record_one_of_each(telemetry.instruments)

    samples = scrape(telemetry.prometheus_port)

    bounds = {s[1]["le"] for s in find(samples, "titan_gateway_time_to_first_image_seconds_bucket")}
    # The SDK's default buckets (0, 5, 10, 25 … 10000) have neither 3 nor 12.5.
    assert {"3.0", "12.5", "120.0", "+Inf"} <= bounds
    assert "10000.0" not in bounds


def test_shutdown_stops_serving_and_frees_the_port(make_telemetry: MakeTelemetry) -> None:
    telemetry = make_telemetry(TelemetryConfig(prometheus_port=0))
    port = telemetry.prometheus_port
    assert port
    scrape(port)

    telemetry.shutdown()
    telemetry.shutdown()  # idempotent

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_each_telemetry_exports_only_its_own_metrics(make_telemetry: MakeTelemetry) -> None:
    first = make_telemetry(TelemetryConfig(prometheus_port=0))
    second = make_telemetry(TelemetryConfig(prometheus_port=0))
    assert first.prometheus_port
    assert second.prometheus_port
    first.instruments.quota_refusal("requests_per_minute")

    assert find(scrape(first.prometheus_port), "titan_gateway_quota_refusals_total")
    assert not find(scrape(second.prometheus_port), "titan_gateway_quota_refusals_total")


def test_a_taken_port_fails_loudly(make_telemetry: MakeTelemetry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(OSError, match="in use"):
            make_telemetry(TelemetryConfig(prometheus_port=port))
