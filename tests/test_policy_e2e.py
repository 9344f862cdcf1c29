"""The policy enforced end to end over a real channel: rewrites listed in
`accepted`, denials naming the rule, moderation before any backend call,
authentication, the admin view, and hot reload that survives a broken file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from gateway.emulator import EmulatorConfig
from policies import hash_key
from tests.auth import bearer
from tests.imagekit import disc_on_white, encode
from tests.streams import collect, detail
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import admin_service_pb2_grpc, image_service_pb2_grpc
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks

FREE_KEY, PRO_KEY, ADMIN_KEY = "tgw_test_free", "tgw_test_pro", "tgw_test_admin"
NOVA = "amazon.nova-canvas-v1:0"

POLICY = f"""
version: 1
admin_keys: ["{hash_key(ADMIN_KEY)}"]
tiers:
  free:
    quotas: {{requests_per_minute: 60}}
    budget: {{daily_usd: 5}}
  pro:
    quotas: {{requests_per_minute: 600}}
    budget: {{daily_usd: 500}}
tenants:
  - {{id: freebie, tier: free, api_keys: ["{hash_key(FREE_KEY)}"]}}
  - {{id: procorp, tier: pro, api_keys: ["{hash_key(PRO_KEY)}"]}}
rules:
  - name: free-standard-only
    when: 'tenant.tier == "free" && request.quality == "premium"'
    set: {{quality: standard}}
  - name: free-size-cap
    when: 'tenant.tier == "free"'
    limit: {{max_images: MAX_IMAGES, max_width: 1024, max_height: 1024}}
  - name: free-no-background-removal
    when: 'tenant.tier == "free" && request.task == "BACKGROUND_REMOVAL"'
    deny: background removal needs a paid plan
  - name: pro-big-batches-watch
    when: 'tenant.tier == "pro" && request.count > 3'
    deny: would stop big pro batches
    mode: shadow
moderation:
  categories:
    - {{name: violence, terms: [gore]}}
"""


def policy_text(max_images: int = 2) -> str:
    return POLICY.replace("MAX_IMAGES", str(max_images))


@pytest.fixture
async def policy_gateway(make_gateway, tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(), encoding="utf-8")
    return await make_gateway(policy_file=path, policy_poll_s=0.05)


def stub_for(gateway, key: str):
    channel = grpc.aio.insecure_channel(gateway.address, interceptors=bearer(key))
    return channel, image_service_pb2_grpc.ImageServiceStub(channel)


def premium_batch(n: int = 5, size: int = 1408) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        model_id=NOVA,
        text_to_image=tasks.TextToImageTask(text="a lighthouse in a storm"),
        config=tasks.ImageGenerationConfig(
            number_of_images=n, width=size, height=size, quality=tasks.QUALITY_PREMIUM
        ),
    )


async def test_free_tier_premium_batch_gets_the_rewrites_the_rules_say(policy_gateway) -> None:
    channel, stub = stub_for(policy_gateway, FREE_KEY)
    async with channel:
        result = await collect(stub.GenerateImages(premium_batch()))
    accepted = result.accepted
    rewrites = [(r.rule, r.field, r.old_value, r.new_value) for r in accepted.rewrites]
    assert rewrites == [
        ("free-standard-only", "quality", "premium", "standard"),
        ("free-size-cap", "count", "5", "2"),
        ("free-size-cap", "width", "1408", "1024"),
        ("free-size-cap", "height", "1408", "1024"),
    ]
    assert (accepted.image_count, accepted.width, accepted.height) == (2, 1024, 1024)
    assert accepted.quality == tasks.QUALITY_STANDARD
    assert accepted.tenant_id == "freebie"
    assert accepted.price_per_image_micros == 40_000  # Nova Canvas, <=1024x1024, standard
    assert accepted.estimated_cost_micros == 80_000
    assert sorted(result.images) == [0, 1]
    assert all((i.width, i.height) == (1024, 1024) for i in result.images.values())


async def test_pro_tier_runs_the_same_request_unchanged(policy_gateway) -> None:
    channel, stub = stub_for(policy_gateway, PRO_KEY)
    async with channel:
        estimate = await stub.EstimateCost(pb.EstimateCostRequest(request=premium_batch(n=4)))
    assert estimate.allowed
    assert list(estimate.rewrites) == []
    assert (estimate.image_count, estimate.width, estimate.quality) == (
        4,
        1408,
        tasks.QUALITY_PREMIUM,
    )
    assert estimate.price_per_image_micros == 80_000  # Nova Canvas, <=2048x2048, premium
    assert estimate.estimated_cost_micros == 320_000
    assert [s.rule for s in estimate.shadow] == ["pro-big-batches-watch"]
    assert policy_gateway.emulator.stats.calls == 0


async def test_a_denied_task_is_permission_denied_naming_the_rule(policy_gateway) -> None:
    request = pb.GenerateImagesRequest(
        background_removal=tasks.BackgroundRemovalTask(image=encode(disc_on_white(512)))
    )
    channel, stub = stub_for(policy_gateway, FREE_KEY)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(request))
        estimate = await stub.EstimateCost(pb.EstimateCostRequest(request=request))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert (info.reason, info.metadata["rule"]) == ("POLICY_DENIED", "free-no-background-removal")
    assert "background removal needs a paid plan" in caught.value.details()
    assert not estimate.allowed
    assert estimate.denied_by == "free-no-background-removal"
    assert policy_gateway.emulator.stats.calls == 0


async def test_a_moderated_prompt_is_blocked_before_the_backend(policy_gateway) -> None:
    request = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a scene full of g.o.r.e"),
        config=tasks.ImageGenerationConfig(width=512, height=512),
    )
    channel, stub = stub_for(policy_gateway, PRO_KEY)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(request))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert info.reason == "MODERATION_BLOCKED"
    assert info.metadata["category"] == "violence"
    assert info.metadata["field"] == "text_to_image.text"
    assert "gore" not in caught.value.details().lower()
    assert policy_gateway.emulator.stats.calls == 0


@pytest.mark.parametrize("key", [None, "tgw_not_a_key"], ids=["no key", "unknown key"])
async def test_a_bad_key_is_unauthenticated(policy_gateway, key) -> None:
    interceptors = bearer(key) if key else None
    async with grpc.aio.insecure_channel(policy_gateway.address, interceptors=interceptors) as ch:
        stub = image_service_pb2_grpc.ImageServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(premium_batch()))
        with pytest.raises(grpc.aio.AioRpcError) as caught_unary:
            await stub.EstimateCost(pb.EstimateCostRequest(request=premium_batch()))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught_unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert policy_gateway.emulator.stats.calls == 0


async def test_admin_and_tenant_keys_only_open_their_own_services(policy_gateway) -> None:
    async with grpc.aio.insecure_channel(
        policy_gateway.address, interceptors=bearer(ADMIN_KEY)
    ) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(
                image_service_pb2_grpc.ImageServiceStub(ch).GenerateImages(premium_batch())
            )
        status = await admin_service_pb2_grpc.AdminServiceStub(ch).GetPolicyStatus(
            admin_pb.GetPolicyStatusRequest()
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (status.status.tenant_count, status.status.rule_count) == (2, 4)
    assert status.status.last_reload_ok
    channel, _ = stub_for(policy_gateway, FREE_KEY)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin_service_pb2_grpc.AdminServiceStub(channel).GetPolicyStatus(
                admin_pb.GetPolicyStatusRequest()
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_broken_reload_keeps_the_old_policy_serving(policy_gateway, tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text().replace("request.quality", "request.qualty"), encoding="utf-8")
    async with grpc.aio.insecure_channel(
        policy_gateway.address, interceptors=bearer(ADMIN_KEY)
    ) as ch:
        reply = await admin_service_pb2_grpc.AdminServiceStub(ch).ReloadPolicy(
            admin_pb.ReloadPolicyRequest()
        )
    assert not reply.status.last_reload_ok
    assert "request.qualty" in reply.status.last_reload_error
    channel, stub = stub_for(policy_gateway, FREE_KEY)
    async with channel:
        result = await collect(stub.GenerateImages(premium_batch()))
    assert result.accepted.rewrites[0].rule == "free-standard-only"
    assert result.accepted.image_count == 2


async def test_an_edited_file_is_picked_up_without_a_restart(policy_gateway, tmp_path) -> None:
    (tmp_path / "policy.yaml").write_text(policy_text(max_images=1), encoding="utf-8")
    channel, stub = stub_for(policy_gateway, FREE_KEY)
    async with channel:
        count = 0
        for _ in range(100):  # bounded: up to ~5 s for the watcher (polls every 0.05 s)
            estimate = await stub.EstimateCost(pb.EstimateCostRequest(request=premium_batch()))
            count = estimate.image_count
            if count == 1:
                break
            await asyncio.sleep(0.05)
    assert count == 1


async def test_a_bedrock_guardrail_blocks_before_any_image_call(make_gateway, tmp_path) -> None:
    path = tmp_path / "guarded.yaml"
    path.write_text(policy_text() + '  guardrail: {id: gr-1, version: "1"}\n', encoding="utf-8")
    gateway = await make_gateway(policy_file=path)
    gateway.emulator.config = EmulatorConfig(guardrails={"gr-1": ("forbiddenword",)})
    channel, stub = stub_for(gateway, PRO_KEY)
    blocked = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="fine", negative_text="a forbiddenword here"),
        config=tasks.ImageGenerationConfig(width=512, height=512),
    )
    fine = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a calm lake"),
        config=tasks.ImageGenerationConfig(width=512, height=512),
    )
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(blocked))
        assert gateway.emulator.stats.received == []
        result = await collect(stub.GenerateImages(fine))
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (info.reason, info.metadata["category"]) == ("MODERATION_BLOCKED", "guardrail")
    assert info.metadata["field"] == "text_to_image.negative_text"
    assert "forbiddenword" not in caught.value.details()
    assert len(result.images) == 1
    assert gateway.emulator.stats.guardrail_calls == 2


async def test_every_refusal_is_on_record_with_no_spend(policy_gateway) -> None:
    refusals = [
        pb.GenerateImagesRequest(
            background_removal=tasks.BackgroundRemovalTask(image=encode(disc_on_white(512)))
        ),
        pb.GenerateImagesRequest(text_to_image=tasks.TextToImageTask(text="so much gore")),
        pb.GenerateImagesRequest(text_to_image=tasks.TextToImageTask(text="a blockedterm")),
    ]
    channel, stub = stub_for(policy_gateway, FREE_KEY)
    async with channel:
        for request in refusals:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await collect(stub.GenerateImages(request))
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with grpc.aio.insecure_channel(
        policy_gateway.address, interceptors=bearer(ADMIN_KEY)
    ) as ch:
        listed = await admin_service_pb2_grpc.AdminServiceStub(ch).ListDenials(
            admin_pb.ListDenialsRequest(tenant_id="freebie")
        )
    found = [(d.reason, d.rule) for d in reversed(listed.denials)]
    assert found == [
        ("POLICY_DENIED", "free-no-background-removal"),
        ("MODERATION_BLOCKED", "moderation:violence"),
        ("CONTENT_FILTERED", ""),
    ]
    assert all("gore" not in d.message for d in listed.denials)
    assert await policy_gateway.ledger.settled_total("freebie") == 0
