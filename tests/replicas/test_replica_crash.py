"""A replica dies mid-request: the image it delivered stays billed, the
budget it still held keeps counting until its lease runs out (and not
longer), and another replica then sells the rest, never more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest_asyncio
from google.rpc import error_details_pb2

from gateway.ledger import BudgetLimit, Ledger, Period
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
from tests.streams import find_detail
from titan.gateway.v1 import image_service_pb2 as pb

PRICE = 8_000  # Titan v2 (the default model), 512x512, standard: $0.008
KEY = "tgw_replicas_crash_key"
LIMIT = 3 * PRICE  # total_usd: 0.024
LEASE_S = 2.0
SEED = 42  # images 0, 1, 2 use seeds 42, 43, 44; A takes 60 s on 43 and 44
RECOVERY_S = 10.0  # the lease plus generous slack for a busy machine
TEST_TIMEOUT_S = 55.0
FIRST_IMAGE_TIMEOUT_S = 20.0


@dataclass
class Pair:
    """Replica A (index 0, slow on seeds 43/44) and B (index 1), one ledger."""

    addresses: Replicas
    ledger: Ledger


@pytest_asyncio.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    policy = write_policy(
        tmp_path / "policy.yaml", {"crash": TenantSpec(key=KEY, budget={"total_usd": 0.024})}
    )
    slow = {"TITAN_GW_EMULATOR__SEED_LATENCY_MS": '{"43": 60000, "44": 60000}'}
    async with fresh_database() as ledger_url, redis_prefix() as prefix:
        env = stores_env(ledger_url, prefix, policy, RESERVATION_LEASE_S=str(LEASE_S))
        async with (
            ledger_client(ledger_url) as ledger,
            replicas(2, env, workdir=tmp_path / "replicas", per_replica=[slow, {}]) as addresses,
        ):
            yield Pair(addresses, ledger)


async def first_image(call: grpc.aio.UnaryStreamCall) -> tuple[pb.Accepted, pb.Image]:  # type: ignore[type-arg]
    """Read the stream up to image 0; the accepted event and that image."""
    accepted: pb.Accepted | None = None
    async for event in call:
        kind = event.WhichOneof("event")
        if kind == "accepted":
            accepted = event.accepted
        elif kind == "image":
            assert event.image.index == 0, f"image {event.image.index} came before image 0"
            assert accepted is not None, "image before accepted"
            return accepted, event.image
        else:
            raise AssertionError(f"unexpected event before image 0: {event}")
    raise AssertionError("the stream ended before image 0")


def budget_refusal_problem(err: grpc.aio.AioRpcError) -> str | None:
    if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return f"expected FAILED_PRECONDITION, got {describe(err)}"
    info = find_detail(err, error_details_pb2.ErrorInfo)
    if info is None or info.reason != "BUDGET_EXHAUSTED":
        return f"no ErrorInfo BUDGET_EXHAUSTED: {describe(err)}"
    if info.metadata.get("period") != "total" or info.metadata.get("resets_at") != "":
        return f"ErrorInfo metadata {dict(info.metadata)}, expected the total period"
    return None


async def test_a_crashed_replicas_reservation_counts_until_its_lease_ends(pair: Pair) -> None:
    loop = asyncio.get_running_loop()
    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        channel(pair.addresses[0], KEY) as to_a,
        channel(pair.addresses[1], KEY) as to_b,
    ):
        await asyncio.wait_for(to_b.channel_ready(), 10)  # B answers at once after the crash
        a, b = image_service(to_a), image_service(to_b)

        # Three images on A: image 0 (seed 42) at once, 1 and 2 in 60 s.
        call = a.GenerateImages(text_to_image(n=3, seed=SEED), timeout=TEST_TIMEOUT_S)
        try:
            accepted, image = await asyncio.wait_for(first_image(call), FIRST_IMAGE_TIMEOUT_S)
            assert image.seed == SEED
            # Crash A while images 1 and 2 are in flight. Kill before the client
            # cancels: a cancelled request bills what is in flight, a dead replica cannot.
            await pair.addresses.kill(0)
            killed_at = loop.time()
        finally:
            call.cancel()
        logs = pair.addresses.logs()

        # Right away: A's reservation of images 1 and 2 still holds the rest.
        refused: grpc.aio.AioRpcError | None = None
        try:
            await generate(b, text_to_image(n=1, seed=100), within_s=10)
        except grpc.aio.AioRpcError as err:
            refused = err
        after = loop.time() - killed_at
        assert refused is not None, f"B sold an image {after:.2f}s after the crash\n{logs}"
        problem = budget_refusal_problem(refused)
        assert problem is None, f"{problem} ({after:.2f}s after the crash)\n{logs}"

        # Image 0, delivered before the crash, is billed; nothing else is.
        assert await pair.ledger.settled_total("crash") == PRICE
        usage = await pair.ledger.recent_usage("crash")
        assert [(u.request_id, u.image_index, u.cost_micros) for u in usage] == [
            (accepted.request_id, 0, PRICE)
        ]
        # The shared ledger still holds A's two undelivered images, on a lease
        # nobody renews: seen from just past the lease, it no longer counts
        # (budgets() takes `now`, so this needs no sleep and no sweeper).
        now = datetime.now(UTC)
        total = [BudgetLimit(Period.TOTAL, LIMIT)]
        [held] = await pair.ledger.budgets("crash", total, now=now)
        assert (held.spent_micros, held.reserved_micros) == (PRICE, 2 * PRICE), held
        past_lease = now + timedelta(seconds=LEASE_S + 0.5)
        [expired] = await pair.ledger.budgets("crash", total, now=past_lease)
        assert (expired.spent_micros, expired.reserved_micros) == (PRICE, 0), expired

        # Once the lease has run out (bounded poll, 10 s): B sells the two images A
        # never delivered.
        attempts = 0
        result = None
        while result is None:
            attempts += 1
            try:
                result = await generate(b, text_to_image(n=2, seed=200), within_s=10)
            except grpc.aio.AioRpcError as err:
                waited = loop.time() - killed_at
                problem = budget_refusal_problem(err)
                assert problem is None, f"attempt {attempts}: {problem}"
                assert waited < RECOVERY_S, (
                    f"A's reservation still counts {waited:.1f}s after the crash "
                    f"(lease {LEASE_S:g}s, {attempts} attempts)\n{pair.addresses.logs()}"
                )
                await asyncio.sleep(0.2)
        assert sorted(result.images) == [0, 1], result.events
        assert not result.failures, result.failures

        assert await pair.ledger.settled_total("crash") == 3 * PRICE
        [final] = await pair.ledger.budgets("crash", total, now=datetime.now(UTC))
        assert (final.spent_micros, final.reserved_micros) == (LIMIT, 0), final
