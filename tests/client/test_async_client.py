"""AsyncGatewayClient against a real gateway on port 0: the image calls,
usage, the admin calls, and errors decoded into ClientError."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import grpc
import pytest

from gateway.client import AsyncGatewayClient, ClientError, FieldViolation
from gateway.server import RunningGateway
from tests.auth import DEV_ADMIN_KEY, DEV_KEY
from tests.client.requests import fox
from titan.gateway.v1 import usage_service_pb2 as usage_pb


def client(gateway: RunningGateway, **keys: str) -> AsyncGatewayClient:
    keys.setdefault("api_key", DEV_KEY)
    return AsyncGatewayClient(gateway.address, timeout=60, **keys)


async def test_generate_streams_accepted_each_image_then_completed(gateway) -> None:
    async with client(gateway) as gw:
        events = [event async for event in gw.generate(fox(2))]
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds == ["accepted", "image", "image", "completed"]
    assert events[0].accepted.image_count == 2
    assert all(e.image.data.startswith(b"\x89PNG") for e in events[1:3])
    assert events[-1].completed.images_delivered == 2


async def test_generate_images_collects_the_stream(gateway) -> None:
    async with client(gateway) as gw:
        result = await gw.generate_images(fox(3))
    assert result.accepted is not None
    assert result.completed is not None
    assert sorted(image.index for image in result.images) == [0, 1, 2]
    assert result.failures == ()
    assert result.completed.cost_micros > 0


async def test_estimate_spends_nothing_and_usage_shows_what_was_spent(gateway) -> None:
    async with client(gateway) as gw:
        estimate = await gw.estimate(fox(2))
        before = await gw.usage()
        result = await gw.generate_images(fox(2))
        after = await gw.usage()
    assert estimate.allowed
    assert estimate.image_count == 2
    assert before.window_images == 0
    assert after.tenant_id == "dev"
    assert after.window_images == 2
    assert result.completed is not None
    assert (
        after.window_cost_micros == result.completed.cost_micros == estimate.estimated_cost_micros
    )


async def test_invalid_argument_is_decoded_into_field_violations(gateway) -> None:
    async with client(gateway) as gw:
        with pytest.raises(ClientError) as caught:
            await gw.generate_images(fox(1, text="x" * 600))
    err = caught.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.violations] == ["text_to_image.text"]
    assert isinstance(err.violations[0], FieldViolation)
    assert not err.unreachable


async def test_admin_calls_use_the_admin_key(gateway) -> None:
    async with client(gateway, admin_key=DEV_ADMIN_KEY) as gw:
        status = await gw.policy_status()
        budget = await gw.set_budget("dev", usage_pb.BUDGET_PERIOD_DAY, 12_500_000)
        topped = await gw.top_up_budget("dev", "BUDGET_PERIOD_DAY", 500_000)
        audit = await gw.audit_log(tenant_id="dev")
        models = await gw.models()
    assert status.status.last_reload_ok
    assert budget.budget.limit_micros == 12_500_000
    assert topped.budget.limit_micros == 13_000_000
    assert len(audit.entries) == 2
    assert any(m.model_id == "amazon.titan-image-generator-v2:0" for m in models.models)


async def test_an_admin_call_without_the_admin_key_is_unauthenticated(gateway) -> None:
    async with client(gateway) as gw:
        with pytest.raises(ClientError) as caught:
            await gw.models()
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


async def test_closing_the_stream_early_cancels_the_backend_calls(gateway) -> None:
    gateway.emulator.hold()
    try:
        async with client(gateway) as gw:
            async with aclosing(gw.generate(fox(3))) as events:
                async for event in events:
                    assert event.WhichOneof("event") == "accepted"
                    assert await gateway.emulator.wait_in_flight(3, timeout=10)
                    break
            assert await drained(gateway)
            assert (await gw.usage()).tenant_id == "dev"  # the channel still serves
    finally:
        gateway.emulator.release()


async def drained(gateway: RunningGateway) -> bool:
    """True once the emulator has no call in flight (within 10 s)."""
    for _ in range(200):
        if gateway.emulator.stats.in_flight == 0:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_an_unreachable_gateway_is_said_so() -> None:
    async with AsyncGatewayClient("127.0.0.1:1", timeout=10) as gw:
        with pytest.raises(ClientError) as caught:
            await gw.usage()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.unreachable
