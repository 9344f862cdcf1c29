"""An idempotency key whose first attempt was cancelled is free again, and the
next attempt bills its own images in full: it never inherits the first
attempt's usage rows (on main the second, dearer request was delivered for 0)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from gateway.emulator import EmulatorConfig
from policies import hash_key
from tests.auth import bearer
from tests.streams import collect
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

KEY = "tgw_key_reuse_test"
NOVA = "amazon.nova-canvas-v1:0"
TITAN_512 = 8_000
NOVA_1024_PREMIUM = 60_000


def _policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"""
version: 1
tiers: {{t: {{budget: {{total_usd: 10}}}}}}
tenants: [{{id: reuse, tier: t, api_keys: ["{hash_key(KEY)}"]}}]
""",
        encoding="utf-8",
    )
    return path


def _request(key: str, **config: object) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(number_of_images=5, **config),  # type: ignore[arg-type]
        client_request_id=key,
    )


async def test_a_reused_key_bills_the_new_attempts_images(make_gateway, tmp_path) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path))
    # Seeds 11-14 take a minute: the first attempt is cancelled with them in flight.
    gateway.emulator.config = EmulatorConfig(seed_latency_ms={s: 60_000 for s in range(11, 15)})
    first = _request("order-77", width=512, height=512, seed=10)
    dearer = _request("order-77", width=1024, height=1024, seed=20, quality=2)
    dearer.model_id = NOVA
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        call = stub.GenerateImages(first)
        got = [await call.read(), await call.read()]  # accepted, image 0
        assert [e.WhichOneof("event") for e in got] == ["accepted", "image"]
        call.cancel()
        for _ in range(200):  # bounded: the cancel bills the 4 images in flight
            if await gateway.ledger.settled_total("reuse") == 5 * TITAN_512:
                break
            await asyncio.sleep(0.05)
        assert await gateway.ledger.settled_total("reuse") == 5 * TITAN_512

        again = await collect(stub.GenerateImages(dearer))

    assert not again.completed.replayed
    assert len(again.images) == 5
    assert again.completed.cost_micros == 5 * NOVA_1024_PREMIUM
    records = await gateway.ledger.recent_usage("reuse", limit=20)
    billed_again = [r for r in records if r.request_id == again.accepted.request_id]
    assert sorted(r.image_index for r in billed_again) == [0, 1, 2, 3, 4]
    assert {(r.model, r.cost_micros) for r in billed_again} == {(NOVA, NOVA_1024_PREMIUM)}
    assert await gateway.ledger.settled_total("reuse") == 5 * TITAN_512 + 5 * NOVA_1024_PREMIUM
    assert again.accepted.request_id != got[0].accepted.request_id
