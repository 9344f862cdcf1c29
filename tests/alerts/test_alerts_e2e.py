"""Budget alerts through a real gateway on port 0: a request that crosses a
threshold makes the webhook arrive, signed; a hung receiver never holds up
a request, and shutdown does not wait for it past the grace."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc

from gateway.alerts.webhook import verify_signature
from policies import hash_key
from tests.auth import bearer
from tests.conftest import GatewayFactory
from tests.streams import StreamResult, collect
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

from .support import SECRET, receiver

KEY, ADMIN = "tgw_alerts_key", "tgw_alerts_admin"
# Titan v2 at 512x512 costs 8_000 micro-USD: 40 % of the cap per image.
POLICY = f"""
version: 1
admin_keys: ["{hash_key(ADMIN)}"]
tiers:
  basic:
    budget: {{daily_usd: 0.02, alert_thresholds: [0.5, 0.8]}}
tenants:
  - {{id: alpha, tier: basic, api_keys: ["{hash_key(KEY)}"]}}
"""


def one_image(seed: int) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(width=512, height=512, seed=seed),
    )


async def start(make_gateway: GatewayFactory, tmp_path: Path, url: str, **webhook: Any) -> Any:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    alerts = {"webhook": {"url": url, "secret": SECRET, **webhook}, "shutdown_grace_s": 0.5}
    return await make_gateway(policy_file=policy, alerts=alerts)


async def generate(address: str, seed: int) -> StreamResult:
    async with grpc.aio.insecure_channel(address, interceptors=bearer(KEY)) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        return await collect(stub.GenerateImages(one_image(seed)))


async def test_the_request_that_crosses_a_threshold_sends_a_signed_webhook(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    async with receiver() as got:
        gateway = await start(make_gateway, tmp_path, got.url)
        await generate(gateway.address, 1)  # 40 %: below both thresholds
        crossing = await generate(gateway.address, 2)  # 80 %: crosses 0.5 and 0.8
        await got.wait_for(2)
        await gateway.parts.alerts.drain()
    assert len(got.deliveries) == 2
    bodies = sorted((json.loads(d.body) for d in got.deliveries), key=lambda b: b["threshold"])
    assert [b["threshold"] for b in bodies] == [0.5, 0.8]
    for body in bodies:
        assert body["tenant"] == "alpha"
        assert body["period"] == "day"
        assert (body["spent_micros"], body["limit_micros"]) == (16_000, 20_000)
        assert body["request_id"] == crossing.accepted.request_id
    assert len({b["event_id"] for b in bodies}) == 2
    for delivery in got.deliveries:
        assert verify_signature(SECRET.encode(), delivery.headers, delivery.body)


async def test_a_hung_receiver_does_not_stall_requests_or_shutdown(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    async with receiver(hang=True) as got:
        gateway = await start(make_gateway, tmp_path, got.url, timeout_s=5, retry_backoff_s=0)
        await generate(gateway.address, 1)
        started = time.monotonic()
        result = await generate(gateway.address, 2)  # crosses both thresholds
        elapsed = time.monotonic() - started
        await got.wait_for(2)  # both deliveries are hanging in the receiver
        assert gateway.parts.alerts.pending == 2
        stop_started = time.monotonic()
        await gateway.stop(0)
        stopped_in = time.monotonic() - stop_started
    assert len(result.images) == 1
    assert elapsed < 2.0  # the request never waits for the 5 s webhook timeout
    assert stopped_in < 3.0  # alerts.shutdown_grace_s = 0.5, then cancelled
    assert gateway.parts.alerts.pending == 0
