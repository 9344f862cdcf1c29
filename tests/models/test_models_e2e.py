"""Every registered model through the gateway and the emulator, the
lifecycle rules on real-Bedrock settings, A/B splits and fallback chains.

The gateways here run the shipped registry and its per-task defaults
(`default_model_id=None`), as `make run` does."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from gateway.domain import TASK_TYPES
from gateway.emulator import Emulator
from gateway.enums import Quality, TaskType
from gateway.provenance import watermark
from gateway.provenance.manifest import read_manifest
from gateway.provenance.vocabulary import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA as COMPOSITE,
)
from gateway.provenance.vocabulary import TRAINED_ALGORITHMIC_MEDIA as TRAINED
from gateway.registry import DEFAULT_SIZE, load_registry
from policies import hash_key
from tests.auth import DEV_ADMIN_KEY, DEV_KEY, bearer
from tests.imagekit import decode
from tests.models.requests import request_for
from tests.streams import collect, detail
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import admin_service_pb2_grpc, image_service_pb2_grpc

REGISTRY = load_registry()
# Tasks that start from an input image: its manifest names it as an ingredient.
EDITS = {
    kind
    for cls, kind in TASK_TYPES.items()
    if {"image", "images", "source_image"} & {f.name for f in dataclasses.fields(cls)}
}
CASES = [(m.model_id, task) for m in REGISTRY.models for task in sorted(m.tasks)]
SD35, ULTRA, CORE = (
    "stability.sd3-5-large-v1:0",
    "stability.stable-image-ultra-v1:1",
    "stability.stable-image-core-v1:1",
)
TITAN_V2 = "amazon.titan-image-generator-v2:0"
KEY = "tgw_models_test"


def _stub(gateway, key: str = DEV_KEY) -> tuple[grpc.aio.Channel, object]:
    channel = grpc.aio.insecure_channel(
        gateway.address,
        interceptors=bearer(key),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    return channel, image_service_pb2_grpc.ImageServiceStub(channel)


def _policy(tmp_path: Path, rules: str = "", budget: str = "daily_usd: 100") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"""
version: 1
admin_keys: ["{hash_key(DEV_ADMIN_KEY)}"]
tiers:
  t: {{budget: {{{budget}}}}}
tenants:
  - {{id: acme, tier: t, api_keys: ["{hash_key(KEY)}"]}}
rules:
{rules or "  []"}
""",
        encoding="utf-8",
    )
    return path


def _expected_price(model_id: str, width: int, height: int) -> int:
    model = REGISTRY.get(model_id)
    assert model is not None
    price = model.price.micros(width, height, Quality.STANDARD)
    assert price is not None
    return price


@pytest.mark.parametrize(("model_id", "task"), CASES, ids=[f"{m}-{t}" for m, t in CASES])
async def test_every_model_runs_every_task_it_supports(
    make_gateway, model_id: str, task: TaskType
) -> None:
    gateway = await make_gateway(default_model_id=None)
    channel, images = _stub(gateway)
    async with channel:
        result = await collect(images.GenerateImages(request_for(task, model_id)))
    accepted, image = result.accepted, result.images[0]
    assert accepted.model_id == model_id
    assert image.model_id == model_id
    decoded = decode(image.data)
    assert (decoded.width, decoded.height) == (image.width, image.height)
    assert (image.width, image.height) == (accepted.width, accepted.height)
    price = _expected_price(model_id, accepted.width, accepted.height)
    assert image.cost_micros == price == result.completed.cost_micros
    records = await gateway.ledger.recent_usage("dev")
    assert [(r.model, r.task, r.cost_micros) for r in records] == [(model_id, task.value, price)]
    # The Image Services are invoked through their `us.` profile id.
    assert gateway.emulator.stats.invoked == [REGISTRY.get(model_id).invoke_model_id]
    # Whatever the dialect, the image carries a manifest that validates and
    # states what made it, and the watermark its manifest names.
    report = read_manifest(image.data, image.mime_type, gateway.parts.marker.trust_anchors)
    assert report.state == "valid", report.explanation
    claims = report.claims
    assert claims is not None
    assert (claims.model_id, claims.task, claims.request_id, claims.image_index) == (
        model_id, task.value, accepted.request_id, 0,
    )  # fmt: skip
    assert claims.has_ingredient == (task in EDITS)
    assert claims.digital_source_type == (COMPOSITE if claims.has_ingredient else TRAINED)
    assert claims.watermark_id == image.watermark_id == records[0].watermark_id
    assert watermark.detect(decoded).watermark_id == image.watermark_id


async def test_defaults_are_active_models_and_cover_every_task(make_gateway) -> None:
    """Without a model id each task runs on the registry's default; those that
    an Active model offers default to it (a real account can run them)."""
    from datetime import date

    today = date(2026, 11, 30)
    for task in TaskType:
        model = REGISTRY.default_for(task)
        assert model is not None, task
        if any(m.can(task) and not m.lifecycle.retired(today) for m in REGISTRY.models):
            assert not model.lifecycle.retired(today), (task, model.model_id)
    gateway = await make_gateway(default_model_id=None)
    channel, images = _stub(gateway)
    async with channel:
        result = await collect(images.GenerateImages(request_for(TaskType.TEXT_IMAGE)))
    assert result.accepted.model_id == SD35
    assert (result.accepted.width, result.accepted.height) == DEFAULT_SIZE


async def test_a_task_the_model_cannot_run_is_refused_naming_the_models_that_can(
    make_gateway,
) -> None:
    gateway = await make_gateway(default_model_id=None)
    channel, images = _stub(gateway)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(images.GenerateImages(request_for(TaskType.ERASE_OBJECT, TITAN_V2)))
    err = caught.value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = detail(err, error_details_pb2.ErrorInfo)
    assert info.reason == "TASK_NOT_SUPPORTED"
    assert info.metadata["supported_by"] == "stability.stable-image-erase-object-v1:0"
    assert await gateway.ledger.recent_usage("dev") == []


@pytest.fixture
async def bedrock_url():
    """A stand-in for real Bedrock: the gateway runs with `backend: bedrock`."""
    emulator = Emulator()
    url = await emulator.start("127.0.0.1", 0)
    yield url
    await emulator.stop()


async def test_a_retired_model_is_refused_before_spend_naming_its_replacement(
    make_gateway, bedrock_url, tmp_path
) -> None:
    gateway = await make_gateway(
        default_model_id=None,
        backend="bedrock",
        bedrock_endpoint_url=bedrock_url,
        policy_file=_policy(tmp_path),
    )
    channel, images = _stub(gateway, KEY)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(images.GenerateImages(request_for(TaskType.TEXT_IMAGE, TITAN_V2)))
    err = caught.value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = detail(err, error_details_pb2.ErrorInfo)
    assert info.reason == "MODEL_RETIRED"
    assert info.metadata["replacement"] == SD35
    assert "2026-06-30" in (err.details() or "")
    assert await gateway.ledger.recent_usage("acme") == []


async def test_a_rule_reroutes_a_retired_model(make_gateway, bedrock_url, tmp_path) -> None:
    rules = f"""
  - name: titan-is-gone
    when: 'request.model == "{TITAN_V2}"'
    route: {SD35}
"""
    gateway = await make_gateway(
        default_model_id=None,
        backend="bedrock",
        bedrock_endpoint_url=bedrock_url,
        policy_file=_policy(tmp_path, rules),
    )
    channel, images = _stub(gateway, KEY)
    async with channel:
        result = await collect(images.GenerateImages(request_for(TaskType.TEXT_IMAGE, TITAN_V2)))
    assert result.accepted.model_id == SD35
    assert [(r.rule, r.field, r.new_value) for r in result.accepted.rewrites] == [
        ("titan-is-gone", "model", SD35)
    ]
    assert result.completed.cost_micros == 80_000


async def test_the_registry_is_listed_with_lifecycle_and_prices(make_gateway) -> None:
    gateway = await make_gateway(default_model_id=None)
    async with grpc.aio.insecure_channel(
        gateway.address, interceptors=bearer(DEV_ADMIN_KEY)
    ) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        listed = await admin.ListModels(admin_pb.ListModelsRequest())
    rows = {m.model_id: m for m in listed.models}
    assert sorted(rows) == REGISTRY.ids
    assert rows[TITAN_V2].lifecycle == "eol"
    assert rows[TITAN_V2].replacement == SD35
    assert rows[SD35].lifecycle == "active"
    assert rows[SD35].price_micros == 80_000
    assert rows["stability.stable-creative-upscale-v1:0"].price_micros == 600_000
    assert rows["stability.stable-image-inpaint-v1:0"].invoke_model_id == (
        "us.stability.stable-image-inpaint-v1:0"
    )


SPLIT = f"""
  - name: ultra-trial
    when: 'request.task == "TEXT_IMAGE"'
    route:
      model: {SD35}
      split: {{model: {ULTRA}, share: 0.3, sticky: request}}
"""


async def test_an_ab_split_sends_its_share_and_is_sticky_per_key(make_gateway, tmp_path) -> None:
    gateway = await make_gateway(default_model_id=None, policy_file=_policy(tmp_path, SPLIT))
    channel, images = _stub(gateway, KEY)
    request = request_for(TaskType.TEXT_IMAGE)
    arms: Counter[str] = Counter()

    async def estimate(key: str) -> str:
        request.client_request_id = key
        from titan.gateway.v1 import image_service_pb2 as pb

        answer = await images.EstimateCost(pb.EstimateCostRequest(request=request))
        assert answer.route_arm == f"ultra-trial:{answer.model_id}"
        return answer.model_id

    async with channel:
        for batch in range(20):
            keys = [f"k-{batch}-{i}" for i in range(100)]
            for model in await asyncio.gather(*(estimate(k) for k in keys)):
                arms[model] += 1
        assert sum(arms.values()) == 2000
        assert 0.25 <= arms[ULTRA] / 2000 <= 0.35, arms
        again = {await estimate("k-3-7") for _ in range(5)}
        assert len(again) == 1


async def test_the_arm_is_recorded_in_the_usage_record(make_gateway, tmp_path) -> None:
    gateway = await make_gateway(default_model_id=None, policy_file=_policy(tmp_path, SPLIT))
    channel, images = _stub(gateway, KEY)
    request = request_for(TaskType.TEXT_IMAGE)
    request.client_request_id = "arm-check"
    async with channel:
        result = await collect(images.GenerateImages(request))
    arm = result.accepted.route_arm
    assert arm == f"ultra-trial:{result.accepted.model_id}"
    records = await gateway.ledger.recent_usage("acme")
    assert [r.route_arm for r in records] == [arm]


FALLBACK = f"""
  - name: ultra-first
    when: 'request.task == "TEXT_IMAGE"'
    route:
      model: {ULTRA}
      fallback: [{CORE}]
"""


@pytest.fixture
def cost_reader():
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from gateway.telemetry.sdk import TelemetryConfig, configure_telemetry

    reader = InMemoryMetricReader()
    telemetry = configure_telemetry(
        TelemetryConfig(), metric_readers=[reader], span_exporters=[], set_global=False
    )
    yield telemetry, reader
    telemetry.shutdown()


def _cost_points(reader) -> dict[str, int]:
    """Settled spend per model on the cost metric, back in micro-USD."""
    totals: Counter[str] = Counter()
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "titan_gateway.cost":
                    for point in metric.data.data_points:
                        totals[point.attributes["model"]] += round(point.value * 1_000_000)
    return dict(totals)


async def test_a_throttled_model_falls_back_and_bills_the_fallbacks_price(
    make_gateway, tmp_path, cost_reader
) -> None:
    from gateway.emulator import EmulatorConfig

    telemetry, reader = cost_reader
    gateway = await make_gateway(
        telemetry=telemetry,
        default_model_id=None,
        backend_max_attempts=2,
        policy_file=_policy(tmp_path, FALLBACK),
    )
    gateway.emulator.config = EmulatorConfig(model_errors={ULTRA: "throttled"})
    channel, images = _stub(gateway, KEY)
    async with channel:
        result = await collect(
            images.GenerateImages(request_for(TaskType.TEXT_IMAGE, number_of_images=3))
        )
    accepted = result.accepted
    assert accepted.model_id == ULTRA
    assert list(accepted.fallback_model_ids) == [CORE]
    assert accepted.estimated_cost_micros == 3 * 140_000  # the dearest model of the chain
    assert {i.model_id for i in result.images.values()} == {CORE}
    assert [i.cost_micros for i in result.images.values()] == [40_000] * 3
    assert result.completed.cost_micros == 120_000
    records = await gateway.ledger.recent_usage("acme")
    assert sorted((r.model, r.cost_micros) for r in records) == [(CORE, 40_000)] * 3
    assert await gateway.ledger.settled_total("acme") == 120_000
    assert _cost_points(reader) == {CORE: 120_000}
    # Ultra was tried (and retried) for every image before Core made it.
    statuses = gateway.emulator.stats.status_counts
    assert statuses[429] == 3 * 2
    assert statuses[200] == 3


async def test_a_fallback_that_cannot_run_the_task_is_left_out(make_gateway, tmp_path) -> None:
    rules = f"""
  - name: i2i
    when: 'request.task == "IMAGE_TO_IMAGE"'
    route:
      model: {SD35}
      fallback: [{CORE}, {ULTRA}]
"""
    gateway = await make_gateway(default_model_id=None, policy_file=_policy(tmp_path, rules))
    channel, images = _stub(gateway, KEY)
    async with channel:
        result = await collect(images.GenerateImages(request_for(TaskType.IMAGE_TO_IMAGE)))
    assert list(result.accepted.fallback_model_ids) == [ULTRA]  # Core has no image-to-image
    assert result.accepted.estimated_cost_micros == 140_000
    assert result.completed.cost_micros == 80_000


async def test_n_images_on_stability_are_n_calls_with_consecutive_seeds(make_gateway) -> None:
    """Stability has no count field: image i is its own call with seed + i."""
    gateway = await make_gateway(default_model_id=None)
    channel, images = _stub(gateway)
    async with channel:
        request = request_for(TaskType.TEXT_IMAGE, CORE, number_of_images=3, seed=100)
        result = await collect(images.GenerateImages(request))
    assert {i: img.seed for i, img in result.images.items()} == {0: 100, 1: 101, 2: 102}
    bodies = [body for model, body in gateway.emulator.stats.received if model == CORE]
    assert sorted(body["seed"] for body in bodies) == [100, 101, 102]
    assert all("number_of_images" not in body and "samples" not in body for body in bodies)
    assert result.completed.cost_micros == 3 * 40_000
