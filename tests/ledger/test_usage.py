"""Contract: usage summaries, recent usage and reconciliation totals, on both stores."""

from __future__ import annotations

import dataclasses

from gateway.ledger import Ledger, UsageGroup, UsageRecord

from .support import LEASE_S, PRICE, T0, seconds, usage

GENERATOR = "amazon.titan-image-generator-v2:0"
CANVAS = "amazon.nova-canvas-v1:0"


async def bill(ledger: Ledger, *records: UsageRecord) -> None:
    for record in records:
        reservation = await ledger.reserve(
            record.tenant, record.request_id, record.cost_micros, [], now=T0, lease_s=LEASE_S
        )
        await ledger.settle(reservation.id, record)


async def test_usage_summary_groups_by_model_and_task_within_the_window(ledger: Ledger) -> None:
    await bill(
        ledger,
        usage("acme", "before", at=T0 - seconds(1)),
        usage("acme", "a", 0, at=T0),
        usage("acme", "a", 1, at=T0 + seconds(1)),
        usage("acme", "b", 0, cost=2 * PRICE, at=T0 + seconds(2), task="INPAINTING"),
        usage("acme", "c", 0, cost=3 * PRICE, at=T0 + seconds(3), model=CANVAS),
        usage("acme", "at-until", at=T0 + seconds(10)),
        usage("globex", "a", 0, at=T0),
    )

    summary = await ledger.usage_summary("acme", since=T0, until=T0 + seconds(10))

    assert summary == [
        UsageGroup(CANVAS, "TEXT_IMAGE", 1, 3 * PRICE),
        UsageGroup(GENERATOR, "INPAINTING", 1, 2 * PRICE),
        UsageGroup(GENERATOR, "TEXT_IMAGE", 2, 2 * PRICE),
    ]
    assert await ledger.usage_summary("nobody", since=T0, until=T0 + seconds(10)) == []


async def test_recent_usage_is_newest_first_and_filtered_by_tenant(ledger: Ledger) -> None:
    records = [
        usage("acme", "r1", 0, at=T0),
        usage("globex", "r1", 0, at=T0 + seconds(1)),
        usage("acme", "r2", 0, at=T0 + seconds(2)),
        usage("acme", "r2", 1, at=T0 + seconds(2)),  # same instant: insertion order breaks ties
    ]
    await bill(ledger, *records)

    assert await ledger.recent_usage("acme") == [records[3], records[2], records[0]]
    assert await ledger.recent_usage(None, limit=2) == [records[3], records[2]]
    assert await ledger.recent_usage("nobody") == []


async def test_settled_total_reconciles_per_tenant_and_overall(ledger: Ledger) -> None:
    assert await ledger.settled_total() == 0
    await bill(
        ledger,
        usage("acme", "r1", 0, cost=PRICE),
        usage("acme", "r1", 1, cost=2 * PRICE),
        usage("globex", "r1", 0, cost=5),
    )

    assert await ledger.settled_total("acme") == 3 * PRICE
    assert await ledger.settled_total("globex") == 5
    assert await ledger.settled_total() == 3 * PRICE + 5


async def test_a_watermark_id_finds_its_record_and_its_manifest(ledger: Ledger) -> None:
    marked = dataclasses.replace(
        usage("acme", "r1", 1, at=T0), watermark_id="a1b2c3d4e5f6", manifest_json='{"m": 1}'
    )
    await bill(ledger, usage("acme", "r1", 0, at=T0), marked, usage("globex", "r2", 0, at=T0))

    found = await ledger.find_watermark("a1b2c3d4e5f6")

    assert found == marked  # the whole record, manifest included
    assert await ledger.find_watermark("ffffffffffff") is None
    # Unmarked images keep an empty id; looking that up finds nothing.
    assert await ledger.find_watermark("") is None
