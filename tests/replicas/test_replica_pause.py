"""A replica paused past its lease cannot spend budget another replica has
since sold: its late settles are fenced, its images are neither sent nor
billed, and the budget is never overrun (issue: 120,000 of 80,000 µUSD)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest_asyncio
from google.rpc import error_details_pb2

from gateway.ledger import Ledger
from tests.replicas.harness import (
    Replicas,
    TenantSpec,
    channel,
    describe,
    fresh_database,
    generate,
    image_service,
    ledger_client,
    redis_prefix,
    replicas,
    stores_env,
    text_to_image,
    write_policy,
)
from tests.streams import collect, find_detail

PRICE = 8_000  # Titan v2 512x512 standard
KEY = "tgw_replicas_pause_key"
LIMIT = 10 * PRICE  # total_usd: 0.08
LEASE_S = 2.0
PAUSE_S = 3 * LEASE_S
TEST_TIMEOUT_S = 60.0


@dataclass
class Pair:
    addresses: Replicas
    ledger: Ledger


@pytest_asyncio.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    policy = write_policy(
        tmp_path / "policy.yaml", {"pause": TenantSpec(key=KEY, budget={"total_usd": 0.08})}
    )
    slow = {"TITAN_GW_EMULATOR__LATENCY_MS": "3000"}  # A's images are in flight when it stops
    async with fresh_database() as ledger_url, redis_prefix() as prefix:
        env = stores_env(ledger_url, prefix, policy, RESERVATION_LEASE_S=str(LEASE_S))
        async with (
            ledger_client(ledger_url) as ledger,
            replicas(2, env, workdir=tmp_path / "replicas", per_replica=[slow, {}]) as addresses,
        ):
            yield Pair(addresses, ledger)


async def test_a_replica_paused_past_its_lease_cannot_overspend(pair: Pair) -> None:
    loop = asyncio.get_running_loop()
    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        channel(pair.addresses[0], KEY) as to_a,
        channel(pair.addresses[1], KEY) as to_b,
    ):
        a, b = image_service(to_a), image_service(to_b)
        call = a.GenerateImages(text_to_image(n=5, seed=1), timeout=TEST_TIMEOUT_S)
        first = await call.read()  # accepted: A holds 5 images of the budget
        assert first.WhichOneof("event") == "accepted", first
        pair.addresses.pause(0)
        paused_at = loop.time()
        try:
            sold = 0
            while sold < 2:  # B sells the budget A's lapsed lease freed: 2 x 5 images
                try:
                    result = await generate(b, text_to_image(n=5, seed=100 + sold), within_s=10)
                except grpc.aio.AioRpcError as err:
                    refusal = err
                else:
                    assert len(result.images) == 5, result.events
                    sold += 1
                    continue
                assert refusal.code() == grpc.StatusCode.FAILED_PRECONDITION, describe(refusal)
                assert loop.time() - paused_at < PAUSE_S - 1, "B never sold the budget"
                await asyncio.sleep(0.2)
            await asyncio.sleep(max(0.0, PAUSE_S - (loop.time() - paused_at)))
        finally:
            pair.addresses.resume(0)

        # A wakes up with 5 finished images and a reservation B reclaimed.
        rest = []
        refused: grpc.aio.AioRpcError | None = None
        try:
            rest = (await collect(call)).events
        except grpc.aio.AioRpcError as err:
            refused = err
        delivered_by_a = [e for e in rest if e.WhichOneof("event") == "image"]
        assert delivered_by_a == [], "A sent images its budget no longer covered"
        assert refused is not None, rest
        assert refused.code() == grpc.StatusCode.ABORTED, describe(refused)
        info = find_detail(refused, error_details_pb2.ErrorInfo)
        assert info is not None, describe(refused)
        assert info.reason == "RESERVATION_LOST", describe(refused)

    spent = await pair.ledger.settled_total("pause")
    usage = await pair.ledger.recent_usage("pause", limit=100)
    assert spent == LIMIT, f"spent {spent} of a {LIMIT} budget"
    assert len(usage) == 10  # exactly B's ten delivered images, each billed once
    assert {u.request_id for u in usage}.isdisjoint({first.accepted.request_id})
