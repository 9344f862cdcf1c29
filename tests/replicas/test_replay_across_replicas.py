"""A keyed request finished on replica A replays from replica B: the artifacts
live in the PostgreSQL store every replica shares, and the bytes are checked
against their sha256 (on main: INTERNAL, FileNotFoundError, on every retry)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from tests.replicas.harness import (
    TenantSpec,
    channel,
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

KEY = "tgw_replay_key"
PRICE = 8_000


async def test_a_finished_request_replays_from_another_replica(tmp_path: Path) -> None:
    policy = write_policy(
        tmp_path / "policy.yaml", {"replay": TenantSpec(key=KEY, budget={"total_usd": 1})}
    )
    async with fresh_database() as ledger_url, redis_prefix() as prefix:
        env = stores_env(ledger_url, prefix, policy)
        async with (
            ledger_client(ledger_url) as ledger,
            replicas(2, env, workdir=tmp_path / "replicas") as addresses,
            asyncio.timeout(60),
            channel(addresses[0], KEY) as to_a,
            channel(addresses[1], KEY) as to_b,
        ):
            keyed = text_to_image(n=3, seed=5)
            keyed.client_request_id = "invoice-9"
            first = await generate(image_service(to_a), keyed)
            replays = [await generate(image_service(to_b), keyed) for _ in range(2)]

            spent = await ledger.settled_total("replay")
            records = await ledger.recent_usage("replay", limit=10)

    def digests(result):  # index -> sha256 of the delivered bytes
        return {i: hashlib.sha256(img.data).hexdigest() for i, img in result.images.items()}

    assert len(first.images) == 3
    assert all(digests(r) == digests(first) for r in replays)
    assert [r.completed.replayed for r in replays] == [True, True]
    assert spent == 3 * PRICE, "a replay is never charged again"
    assert {r.image_sha256 for r in records} == set(digests(first).values())
