"""SIGTERM with streams in flight: health turns NOT_SERVING first, the
streams are cancelled after the grace, every image in flight is billed and
every reservation released before the ledger closes, keyed requests are
free to retry at once, and the process exits 0. (On main: images 1-2 of
each request failed with "ledger is not started", reservations stayed held
and a keyed request answered ABORTED for minutes.)"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.idempotency import request_hash
from gateway.ledger import BudgetLimit, IdempotencyState, Period, SqliteLedger
from tests.auth import DEV_KEY, bearer
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

PRICE = 8_000  # Titan v2 512x512 standard


def _request(seed: int, key: str = "") -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(number_of_images=3, width=512, height=512, seed=seed),
        client_request_id=key,
    )


async def test_sigterm_settles_releases_and_frees_keys_before_closing_the_ledger(
    tmp_path: Path,
) -> None:
    # Seeds 0, 10, 20 answer at once; the next two of each request hang for a minute.
    slow = {str(s + i): 60_000 for s in (0, 10, 20) for i in (1, 2)}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TITAN_GW_")},
        "TITAN_GW_LISTEN": "127.0.0.1:0",
        "TITAN_GW_DATA_DIR": str(tmp_path),
        "TITAN_GW_DEFAULT_MODEL_ID": "amazon.titan-image-generator-v2:0",
        "TITAN_GW_SHUTDOWN_GRACE_S": "1",
        "TITAN_GW_EMULATOR__SEED_LATENCY_MS": json.dumps(slow),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    statuses: list[int] = []
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        match = re.search(rb"listening on (127\.0\.0\.1:\d+)", line)
        assert match, line
        address = match.group(1).decode()
        async with grpc.aio.insecure_channel(address, interceptors=bearer(DEV_KEY)) as channel:
            stub = image_service_pb2_grpc.ImageServiceStub(channel)
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            statuses.append((await watch.read()).status)
            calls = [
                stub.GenerateImages(_request(0)),
                stub.GenerateImages(_request(10)),
                stub.GenerateImages(_request(20, key="order-sigterm")),
            ]
            for call in calls:  # accepted, then image 0: images 1 and 2 are in flight
                kinds = [(await call.read()).WhichOneof("event") for _ in range(2)]
                assert kinds == ["accepted", "image"]
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                async for update in watch:
                    statuses.append(update.status)
                    if update.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                        break
            codes = []
            for call in calls:
                try:
                    async with asyncio.timeout(20):
                        while await call.read() is not grpc.aio.EOF:
                            pass
                except grpc.aio.AioRpcError as err:
                    codes.append(err.code())
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
    assert statuses[-1] == health_pb2.HealthCheckResponse.NOT_SERVING
    assert len(codes) == 3  # each stream was cut off after the grace

    ledger = SqliteLedger(tmp_path / "ledger.db")
    await ledger.start()
    try:
        # Image 0 delivered, images 1-2 in flight at the cut (Bedrock bills
        # them): 3 billed images per request, nothing left reserved.
        assert await ledger.settled_total("dev") == 3 * 3 * PRICE
        now = datetime.now(UTC)
        (day,) = await ledger.budgets("dev", [BudgetLimit(Period.DAY, 100_000_000)], now=now)
        assert day.reserved_micros == 0
        claim = await ledger.claim_idempotency(
            "dev", "order-sigterm", request_hash(_request(20, key="order-sigterm")),
            now=now, lease_s=60,
        )  # fmt: skip
        assert claim.state is IdempotencyState.NEW, "the key was left running"
    finally:
        await ledger.close()
