"""The money path in one gateway (SQLite ledger, in-memory limits), over a
real channel: budgets never overrun, images settled before they are sent,
quotas with the right errors, idempotent retries charged once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from gateway.emulator import EmulatorConfig
from gateway.ledger import LedgerUnavailable
from policies import hash_key
from tests.auth import bearer
from tests.streams import collect, detail
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

KEY = "tgw_money_test"
PRICE = 8_000  # Titan v2, 512x512, standard

POLICY = f"""
version: 1
tiers:
  basic: {{}}
tenants:
  - id: money
    tier: basic
    api_keys: ["{hash_key(KEY)}"]
    budget: {{total_usd: 0.04}}
    quotas: {{QUOTAS}}
"""


async def start(make_gateway, tmp_path: Path, quotas: str = "{}", **settings):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("{QUOTAS}", quotas), encoding="utf-8")
    return await make_gateway(policy_file=path, **settings)


def request(n: int = 1, seed: int = 1, key: str = "") -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(number_of_images=n, width=512, height=512, seed=seed),
        client_request_id=key,
    )


async def test_budget_buys_exactly_what_it_covers(make_gateway, tmp_path) -> None:
    gateway = await start(make_gateway, tmp_path)  # $0.04 = 5 images
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        results = await asyncio.gather(
            *(collect(stub.GenerateImages(request(seed=i))) for i in range(12)),
            return_exceptions=True,
        )
    delivered = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(delivered) == 5
    assert len(refused) == 7
    for err in refused:
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = detail(err, error_details_pb2.ErrorInfo)
        assert info.reason == "BUDGET_EXHAUSTED"
        assert info.metadata["period"] == "total"
        assert info.metadata["resets_at"] == ""
    assert all(r.images[0].cost_micros == PRICE for r in delivered)
    assert all(r.completed.cost_micros == PRICE for r in delivered)
    assert await gateway.ledger.settled_total("money") == 5 * PRICE


async def test_failed_images_are_not_charged_and_the_rest_is_released(
    make_gateway, tmp_path
) -> None:
    gateway = await start(make_gateway, tmp_path, backend_max_attempts=1)
    gateway.emulator.config = EmulatorConfig(fault_seeds=frozenset({2, 3}))
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        result = await collect(stub.GenerateImages(request(n=4, seed=1)))
        assert sorted(result.images) == [0, 3]
        assert result.completed.cost_micros == 2 * PRICE
        # 2 of 5 images spent, nothing left reserved: 3 more fit, a 4th does not.
        again = await collect(stub.GenerateImages(request(n=3, seed=100)))
        assert len(again.images) == 3
    assert await gateway.ledger.settled_total("money") == 5 * PRICE


async def test_rate_limit_is_resource_exhausted_with_retry_info(make_gateway, tmp_path) -> None:
    gateway = await start(make_gateway, tmp_path, quotas="{requests_per_minute: 2}")
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        for seed in (1, 2):
            await collect(stub.GenerateImages(request(seed=seed)))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(request(seed=3)))
    err = caught.value
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    failure = detail(err, error_details_pb2.QuotaFailure)
    assert failure.violations[0].subject == "tenant:money"
    assert failure.violations[0].description.startswith("requests_per_minute")
    retry = detail(err, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToTimedelta().total_seconds() > 0
    assert await gateway.ledger.settled_total("money") == 2 * PRICE


async def test_a_request_larger_than_a_quota_is_not_retryable(make_gateway, tmp_path) -> None:
    gateway = await start(make_gateway, tmp_path, quotas="{images_per_minute: 2}")
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(request(n=3)))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert detail(caught.value, error_details_pb2.QuotaFailure).violations


async def test_concurrency_slots_are_held_while_streaming(make_gateway, tmp_path) -> None:
    gateway = await start(make_gateway, tmp_path, quotas="{max_concurrent_requests: 1}")
    gateway.emulator.hold()
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        first = asyncio.create_task(collect(stub.GenerateImages(request(seed=1))))
        try:
            assert await gateway.emulator.wait_in_flight(1, timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await collect(stub.GenerateImages(request(seed=2)))
        finally:
            gateway.emulator.release()
        await first
        second = await collect(stub.GenerateImages(request(seed=3)))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (
        "max_concurrent_requests"
        in detail(caught.value, error_details_pb2.QuotaFailure).violations[0].description
    )
    assert len(second.images) == 1


async def test_idempotent_retries_are_charged_once_and_return_the_same_bytes(
    make_gateway, tmp_path
) -> None:
    gateway = await start(make_gateway, tmp_path)
    gateway.emulator.config = EmulatorConfig(latency_ms=400)
    keyed = request(n=2, seed=9, key="order-1234")
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        first = asyncio.create_task(collect(stub.GenerateImages(keyed)))
        assert await gateway.emulator.wait_in_flight(1, timeout=10)
        during = await collect(stub.GenerateImages(keyed))  # waits for the first
        results = [await first, during, await collect(stub.GenerateImages(keyed))]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(request(n=1, seed=10, key="order-1234")))
    images = [{i: img.data for i, img in r.images.items()} for r in results]
    assert images[0] == images[1] == images[2]
    assert len(images[0]) == 2
    assert [r.completed.replayed for r in results] == [False, True, True]
    assert gateway.emulator.stats.calls == 2
    assert await gateway.ledger.settled_total("money") == 2 * PRICE
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_cancelling_bills_the_images_in_flight_and_releases_the_rest(
    make_gateway, tmp_path
) -> None:
    gateway = await start(make_gateway, tmp_path, backend_concurrency=2)
    gateway.emulator.hold()
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        call = stub.GenerateImages(request(n=4))  # 2 in flight, 2 waiting for a backend slot
        try:
            assert await gateway.emulator.wait_in_flight(2, timeout=10)
            call.cancel()
            for _ in range(200):  # bounded: the server notices the cancel
                if await gateway.ledger.settled_total("money") == 2 * PRICE:
                    break
                await asyncio.sleep(0.05)
        finally:
            gateway.emulator.release()
        # 2 billed, 2 released: 3 more images fit in the $0.04 budget.
        result = await collect(stub.GenerateImages(request(n=3, seed=50)))
    assert await gateway.ledger.settled_total("money") == 5 * PRICE
    assert len(result.images) == 3


async def test_a_ledger_outage_is_unavailable_and_the_server_keeps_serving(
    make_gateway, tmp_path, monkeypatch
) -> None:
    gateway = await start(make_gateway, tmp_path)

    async def down(*args: object, **kwargs: object) -> None:
        raise LedgerUnavailable("database is locked")

    monkeypatch.setattr(gateway.ledger, "reserve", down)
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(request()))
        monkeypatch.undo()
        result = await collect(stub.GenerateImages(request(seed=2)))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "ledger" in caught.value.details()
    assert gateway.emulator.stats.calls == 1  # only the second request reached the backend
    assert len(result.images) == 1


async def test_rules_see_the_tenants_usage(make_gateway, tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        POLICY.replace("{QUOTAS}", "{images_per_day: 100}")
        + """rules:
  - name: slow-down-past-half
    when: 'usage.budget_used_fraction >= 0.5 && usage.images_today >= 3'
    deny: more than half of the budget is spent
""",
        encoding="utf-8",
    )
    gateway = await make_gateway(policy_file=path)
    assert gateway.policies.current.reads_usage
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        await collect(stub.GenerateImages(request(n=3)))  # 60 % of $0.04, 3 images today
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(request(seed=9)))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert detail(caught.value, error_details_pb2.ErrorInfo).metadata["rule"] == (
        "slow-down-past-half"
    )
    assert await gateway.ledger.settled_total("money") == 3 * PRICE


async def test_the_global_images_cap_holds_across_tenants(make_gateway, tmp_path) -> None:
    gateway = await start(make_gateway, tmp_path, global_images_per_minute=2)
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        await collect(stub.GenerateImages(request(n=2)))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(stub.GenerateImages(request(seed=5)))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    violation = detail(caught.value, error_details_pb2.QuotaFailure).violations[0]
    assert violation.description.startswith("global_images_per_minute")


async def test_a_long_request_keeps_its_reservation_past_the_lease(make_gateway, tmp_path) -> None:
    gateway = await start(make_gateway, tmp_path, reservation_lease_s=0.6)
    gateway.emulator.hold()
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        first = asyncio.create_task(collect(stub.GenerateImages(request(n=4))))
        try:
            assert await gateway.emulator.wait_in_flight(4, timeout=10)
            await asyncio.sleep(1.5)  # 2.5 leases: only renewal keeps the 4 images reserved
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                # Bounded: were it admitted, the held emulator would keep it waiting.
                await collect(stub.GenerateImages(request(n=2, seed=60), timeout=5))
        finally:
            gateway.emulator.release()
        result = await first
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(result.images) == 4
    assert await gateway.ledger.settled_total("money") == 4 * PRICE
