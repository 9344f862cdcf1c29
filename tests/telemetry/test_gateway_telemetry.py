"""Telemetry through a real gateway: the span tree of a request, refusals on
spans, a client's traceparent, the cost metric against the ledger, /metrics
over HTTP, and OTLP export from a gateway configured by its settings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.emulator import EmulatorConfig
from gateway.errors import ERROR_DOMAIN
from gateway.observe import REQUEST_ID
from gateway.telemetry.sdk import TelemetryConfig
from policies import hash_key
from tests.auth import bearer
from tests.streams import collect, find_detail
from tests.telemetry.support import OtlpCollector, find, scrape
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

KEY = "tgw_otel_test"
SERVER_SPAN = "titan.gateway.v1.ImageService/GenerateImages"
MODEL = "amazon.titan-image-generator-v2:0"
POLICY = f"""
version: 1
tiers:
  basic:
    budget: {{total_usd: 0.05}}
tenants:
  - {{id: otel, tier: basic, api_keys: ["{hash_key(KEY)}"]}}
rules:
  - name: no-premium
    when: 'request.quality == "premium"'
    deny: premium is not on this plan
"""


def request(n: int = 1, seed: int = 1, quality: int = 0) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(
            number_of_images=n, width=512, height=512, seed=seed, quality=quality
        ),
    )


@pytest.fixture
def exporters():
    return InMemorySpanExporter(), InMemoryMetricReader()


@pytest.fixture
async def traced(make_gateway, make_telemetry, exporters, tmp_path: Path):
    spans, reader = exporters
    telemetry = make_telemetry(
        TelemetryConfig(prometheus_port=0), span_exporters=[spans], metric_readers=[reader]
    )
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    gateway = await make_gateway(telemetry=telemetry, policy_file=path)
    return gateway, telemetry


def stub(gateway, key: str = KEY):
    channel = grpc.aio.insecure_channel(gateway.address, interceptors=bearer(key))
    return channel, image_service_pb2_grpc.ImageServiceStub(channel)


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_three_image_request_makes_one_span_tree(traced, exporters) -> None:
    gateway, _ = traced
    channel, images = stub(gateway)
    async with channel:
        result = await collect(images.GenerateImages(request(n=3)))
    spans = exporters[0].get_finished_spans()
    (root,) = by_name(spans, SERVER_SPAN)
    assert root.kind is SpanKind.SERVER
    assert root.parent is None
    attrs = root.attributes
    assert attrs["rpc.system"] == "grpc"
    assert attrs["rpc.service"] == "titan.gateway.v1.ImageService"
    assert attrs["rpc.method"] == "GenerateImages"
    assert attrs["rpc.grpc.status_code"] == 0
    assert (attrs["titan.tenant"], attrs["titan.image_count"]) == ("otel", 3)
    # The id the caller got and the ledger's usage records carry.
    accepted = result.accepted
    assert attrs[REQUEST_ID] == accepted.request_id
    assert attrs["titan.estimated_cost_micros"] == accepted.estimated_cost_micros == 24_000
    assert (attrs["titan.width"], attrs["titan.height"], attrs["titan.quality"]) == (
        512,
        512,
        "standard",
    )
    assert "titan.prompt" not in attrs
    assert root.status.status_code is StatusCode.UNSET
    children = [s for s in spans if s.parent and s.parent.span_id == root.context.span_id]
    names = sorted(s.name for s in children)
    backend = f"generate_content {MODEL}"
    assert names == sorted(
        ["validate", "policy", "moderation", "admission",
         *[backend] * 3, *["provenance"] * 3, *["settle"] * 3]
    )  # fmt: skip
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    for span in by_name(spans, backend):
        assert span.kind is SpanKind.CLIENT
        assert span.attributes["gen_ai.provider.name"] == "aws.bedrock"
        assert "gen_ai.system" not in span.attributes  # replaced by gen_ai.provider.name
        assert span.attributes["gen_ai.request.model"] == MODEL
        assert span.attributes["gen_ai.operation.name"] == "generate_content"
    settles = by_name(spans, "settle")
    assert sorted(s.attributes["titan.image_index"] for s in settles) == [0, 1, 2]
    costs = [s.attributes["titan.cost_micros"] for s in settles]
    assert all(isinstance(c, int) for c in costs)  # micro-USD, as in the API
    assert sum(costs) == result.completed.cost_micros == 24_000
    assert by_name(spans, "admission")[0].attributes["titan.reserved_micros"] == 24_000


async def test_a_refused_request_carries_the_refusal(traced, exporters) -> None:
    gateway, _ = traced
    channel, images = stub(gateway)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await collect(images.GenerateImages(request(quality=tasks.QUALITY_PREMIUM)))
    channel, anonymous = stub(gateway, "tgw_wrong")
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await collect(anonymous.GenerateImages(request()))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    roots = by_name(exporters[0].get_finished_spans(), SERVER_SPAN)
    codes = sorted(s.attributes["rpc.grpc.status_code"] for s in roots)
    assert codes == [7, 16]  # PERMISSION_DENIED, UNAUTHENTICATED
    policy_denied = next(s for s in roots if s.attributes["rpc.grpc.status_code"] == 7)
    assert policy_denied.attributes["titan.refusal"] == "POLICY_DENIED"  # the ErrorInfo reason
    info = find_detail(denied.value, error_details_pb2.ErrorInfo)
    assert info is not None
    assert (info.domain, info.reason) == (ERROR_DOMAIN, "POLICY_DENIED")
    assert policy_denied.attributes[REQUEST_ID]  # the id of the ledger's denial record
    unauthenticated = next(s for s in roots if s.attributes["rpc.grpc.status_code"] == 16)
    assert REQUEST_ID not in unauthenticated.attributes  # refused before it had one
    assert [e.name for e in policy_denied.events] == ["refused"]
    policy_spans = by_name(exporters[0].get_finished_spans(), "policy")
    assert policy_spans[0].attributes["titan.policy.denied_by"] == "no-premium"


async def test_the_callers_traceparent_is_the_parent_of_the_server_span(traced, exporters) -> None:
    gateway, _ = traced
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    metadata = (("traceparent", f"00-{trace_id}-{parent_id}-01"),)
    channel, images = stub(gateway)
    async with channel:
        await collect(images.GenerateImages(request(), metadata=metadata))
    (root,) = by_name(exporters[0].get_finished_spans(), SERVER_SPAN)
    assert root.context.trace_id == int(trace_id, 16)
    assert root.parent is not None
    assert root.parent.span_id == int(parent_id, 16)
    assert root.parent.is_remote


async def test_the_cost_metric_equals_the_ledgers_settled_total(traced, exporters) -> None:
    gateway, _ = traced
    gateway.emulator.config = EmulatorConfig(fault_seeds=frozenset({12}))
    channel, images = stub(gateway)
    async with channel:
        runs = [images.GenerateImages(request(n=2, seed=s)) for s in (1, 11, 21, 31)]
        await asyncio.gather(*(collect(r) for r in runs), return_exceptions=True)
    settled = await gateway.ledger.settled_total("otel")
    assert settled > 0
    data = exporters[1].get_metrics_data()
    points = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "titan_gateway.cost"
        for point in metric.data.data_points
    ]
    assert round(sum(p.value for p in points) * 1_000_000) == settled
    assert all(p.attributes["tenant"] == "otel" for p in points)


async def test_metrics_are_scraped_over_http_with_their_labels(traced) -> None:
    gateway, telemetry = traced
    channel, images = stub(gateway)
    async with channel:
        await collect(images.GenerateImages(request(n=2)))
    samples = await asyncio.to_thread(scrape, telemetry.prometheus_port)
    labels = {"tenant": "otel", "model": MODEL, "task_type": "TEXT_IMAGE", "quality": "standard"}
    images_ = find(samples, "titan_gateway_images_total", outcome="delivered", **labels)
    cost = find(samples, "titan_gateway_cost_USD_total", **labels)
    assert [s[2] for s in images_] == [2.0]
    assert images_[0][1]["size_class"] == "<=512x512"
    assert [round(s[2], 6) for s in cost] == [0.016]
    assert find(
        samples, "titan_gateway_request_duration_seconds_count", rpc_method="GenerateImages"
    )


async def test_a_gateway_exports_over_otlp_when_the_environment_says_so(
    make_gateway, monkeypatch
) -> None:
    collector = OtlpCollector()
    collector.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        gateway = await make_gateway()  # telemetry configured from its settings
        async with grpc.aio.insecure_channel(
            gateway.address, interceptors=bearer("tgw_dev_key")
        ) as channel:
            await collect(
                image_service_pb2_grpc.ImageServiceStub(channel).GenerateImages(request())
            )
        await gateway.stop(0)  # shutdown flushes both exporters
        assert SERVER_SPAN in collector.span_names()
        assert {"titan_gateway.images", "titan_gateway.cost"} <= collector.metric_names()
    finally:
        collector.stop()


async def test_decisions_refusals_and_budget_show_on_metrics(traced) -> None:
    gateway, telemetry = traced
    channel, images = stub(gateway)
    async with channel:
        await collect(images.GenerateImages(request(n=2)))
        with pytest.raises(grpc.aio.AioRpcError):
            await collect(images.GenerateImages(request(quality=tasks.QUALITY_PREMIUM)))
        with pytest.raises(grpc.aio.AioRpcError):
            await collect(images.GenerateImages(request(n=5, seed=50)))  # over the budget
    samples = await asyncio.to_thread(scrape, telemetry.prometheus_port)
    (denials,) = find(samples, "titan_gateway_policy_decisions_total", rule="no-premium")
    assert (denials[1]["effect"], denials[2]) == ("deny", 1.0)
    (refusals,) = find(samples, "titan_gateway_quota_refusals_total", quota="budget_total")
    assert refusals[2] == 1.0
    (budget,) = find(samples, "titan_gateway_budget_remaining_USD", tenant="otel", period="total")
    assert round(budget[2], 6) == 0.05 - 0.016


async def test_a_replay_carries_the_request_id_of_the_run_it_replays(traced, exporters) -> None:
    gateway, _ = traced
    keyed = request()
    keyed.client_request_id = "replay-me"
    channel, images = stub(gateway)
    async with channel:
        first = await collect(images.GenerateImages(keyed))
        again = await collect(images.GenerateImages(keyed))
    assert again.completed.replayed
    assert again.accepted.request_id == first.accepted.request_id
    roots = by_name(exporters[0].get_finished_spans(), SERVER_SPAN)
    assert [s.attributes[REQUEST_ID] for s in roots] == [first.accepted.request_id] * 2
