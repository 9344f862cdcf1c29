"""Usage and budget administration over a real channel."""

from __future__ import annotations

import grpc
import pytest

from policies import hash_key
from tests.auth import bearer
from tests.streams import collect
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import admin_service_pb2_grpc, image_service_pb2_grpc, usage_service_pb2_grpc
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks
from titan.gateway.v1 import usage_service_pb2 as usage_pb

KEY, OTHER, ADMIN = "tgw_usage_a", "tgw_usage_b", "tgw_usage_admin"
POLICY = f"""
version: 1
admin_keys: ["{hash_key(ADMIN)}"]
tiers:
  basic:
    quotas: {{requests_per_minute: 100}}
    budget: {{daily_usd: 0.02, alert_thresholds: [0.5, 0.8]}}
tenants:
  - {{id: alpha, tier: basic, api_keys: ["{hash_key(KEY)}"]}}
  - {{id: beta, tier: basic, api_keys: ["{hash_key(OTHER)}"]}}
"""


def one_image(seed: int) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(width=512, height=512, seed=seed),
    )


@pytest.fixture
async def usage_gateway(make_gateway, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return await make_gateway(policy_file=path)


async def test_a_tenant_sees_its_own_budget_quotas_and_usage(usage_gateway) -> None:
    async with grpc.aio.insecure_channel(usage_gateway.address, interceptors=bearer(KEY)) as ch:
        images = image_service_pb2_grpc.ImageServiceStub(ch)
        for seed in (1, 2):
            await collect(images.GenerateImages(one_image(seed)))
        report = await usage_service_pb2_grpc.UsageServiceStub(ch).GetUsage(
            usage_pb.GetUsageRequest()
        )
    assert report.tenant_id == "alpha"
    (day,) = report.budgets
    assert (day.limit_micros, day.spent_micros, day.reserved_micros) == (20_000, 16_000, 0)
    assert day.remaining_micros == 4_000
    assert list(day.alerts_reached) == [0.5, 0.8]
    assert (report.window_images, report.window_cost_micros) == (2, 16_000)
    (row,) = report.usage
    assert (row.model, row.task_type, row.images) == (
        "amazon.titan-image-generator-v2:0",
        "TEXT_IMAGE",
        2,
    )
    rpm = next(q for q in report.quotas if q.name == "requests_per_minute")
    assert (rpm.limit, rpm.available) == (100, 98)


async def test_admin_tops_up_a_budget_and_reads_any_tenant(usage_gateway) -> None:
    async with grpc.aio.insecure_channel(usage_gateway.address, interceptors=bearer(OTHER)) as ch:
        images = image_service_pb2_grpc.ImageServiceStub(ch)
        for seed in (1, 2):
            await collect(images.GenerateImages(one_image(seed)))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await collect(images.GenerateImages(one_image(3)))
        async with grpc.aio.insecure_channel(
            usage_gateway.address, interceptors=bearer(ADMIN)
        ) as admin_ch:
            admin = admin_service_pb2_grpc.AdminServiceStub(admin_ch)
            topped = await admin.TopUpBudget(
                admin_pb.TopUpBudgetRequest(
                    tenant_id="beta", period=usage_pb.BUDGET_PERIOD_DAY, amount_micros=8_000
                )
            )
            await collect(images.GenerateImages(one_image(3)))
            records = await admin.ListUsageRecords(
                admin_pb.ListUsageRecordsRequest(tenant_id="beta")
            )
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await admin.GetTenantUsage(admin_pb.GetTenantUsageRequest(tenant_id="nobody"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert topped.budget.limit_micros == 28_000
    assert topped.budget.overridden
    assert len(records.records) == 3
    assert {r.tenant_id for r in records.records} == {"beta"}
    assert all(len(r.image_sha256) == 64 for r in records.records)
    # Each delivered image's watermark id, as DetectProvenance maps it back.
    assert len({r.watermark_id for r in records.records}) == 3
    assert all(len(r.watermark_id) == 12 for r in records.records)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_tenant_keys_cannot_use_the_admin_service(usage_gateway) -> None:
    async with grpc.aio.insecure_channel(usage_gateway.address, interceptors=bearer(KEY)) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin_service_pb2_grpc.AdminServiceStub(ch).SetBudget(
                admin_pb.SetBudgetRequest(
                    tenant_id="alpha", period=usage_pb.BUDGET_PERIOD_DAY, limit_micros=10**9
                )
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_crossing_an_alert_threshold_logs_one_event(usage_gateway, caplog) -> None:
    caplog.set_level("WARNING", logger="gateway.admission")
    async with grpc.aio.insecure_channel(usage_gateway.address, interceptors=bearer(KEY)) as ch:
        images = image_service_pb2_grpc.ImageServiceStub(ch)
        await collect(images.GenerateImages(one_image(1)))  # 40 %: below both thresholds
        assert not [r for r in caplog.records if "budget alert" in r.getMessage()]
        await collect(images.GenerateImages(one_image(2)))  # 80 %: crosses 0.5 and 0.8
    alerts = [r for r in caplog.records if "budget alert" in r.getMessage()]
    assert [r.threshold for r in alerts] == [0.5, 0.8]
    assert {r.tenant for r in alerts} == {"alpha"}
