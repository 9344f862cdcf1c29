"""Contract: the admin audit log, on both stores. A budget change and its
audit entry commit together or not at all; the log reads newest first."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta, timezone
from typing import Any

import asyncpg
import pytest

from gateway.ledger import AuditAction, AuditEntry, Ledger, LedgerUnavailable, Period

from .conftest import Store
from .support import T0, seconds

ADMIN = "admin:sha256:c44d9f46593a"


def entry(action: AuditAction = AuditAction.SET_BUDGET, **fields: Any) -> AuditEntry:
    values: dict[str, Any] = {"actor": ADMIN, "action": action, "outcome": "OK", "created_at": T0}
    if action is not AuditAction.RELOAD_POLICY:
        values |= {"tenant": "acme", "period": Period.DAY}
    return AuditEntry(**values | fields)


@pytest.fixture
async def audited(store: Store, ledger: Ledger) -> Ledger:
    """The ledger with an empty audit log (the shared PostgreSQL keeps rows between tests)."""
    if store.dsn is not None:
        conn = await asyncpg.connect(store.dsn)
        try:
            await conn.execute("DELETE FROM admin_audit")
        finally:
            await conn.close()
    return ledger


async def test_set_budget_records_the_cap_before_and_after(audited: Ledger) -> None:
    first = await audited.set_budget_audited(
        "acme", Period.DAY, 5_000_000, base_limit_micros=2_000_000, audit=entry()
    )
    second = await audited.set_budget_audited(
        "acme", Period.DAY, 0, base_limit_micros=2_000_000, audit=entry(created_at=T0 + seconds(1))
    )
    assert (first.old_limit_micros, first.new_limit_micros) == (2_000_000, 5_000_000)
    assert (second.old_limit_micros, second.new_limit_micros) == (5_000_000, 0)
    assert 0 < first.id < second.id
    assert await audited.budget_overrides("acme") == {Period.DAY: 0}
    assert await audited.recent_audit("acme") == [second, first]


async def test_a_first_cap_of_an_uncapped_period_records_no_old_cap(audited: Ledger) -> None:
    stored = await audited.set_budget_audited(
        "acme", Period.MONTH, 7, base_limit_micros=None, audit=entry(period=Period.MONTH)
    )
    assert (stored.old_limit_micros, stored.new_limit_micros) == (None, 7)
    assert await audited.recent_audit(None) == [stored]


async def test_top_up_records_the_amount_and_both_caps(audited: Ledger) -> None:
    audit = entry(AuditAction.TOP_UP_BUDGET, amount_micros=250)
    first = await audited.top_up_audited(
        "acme", Period.DAY, 250, base_limit_micros=1_000, audit=audit
    )
    second = await audited.top_up_audited(
        "acme", Period.DAY, 250, base_limit_micros=1_000, audit=audit
    )
    assert (first.old_limit_micros, first.new_limit_micros, first.amount_micros) == (
        1_000,
        1_250,
        250,
    )
    assert (second.old_limit_micros, second.new_limit_micros) == (1_250, 1_500)
    assert await audited.budget_overrides("acme") == {Period.DAY: 1_500}


async def test_every_field_round_trips_and_times_come_back_in_utc(audited: Ledger) -> None:
    berlin = timezone(timedelta(hours=1))
    reload = entry(
        AuditAction.RELOAD_POLICY,
        outcome="FAILED_PRECONDITION",
        created_at=T0.astimezone(berlin) + timedelta(microseconds=7),
        old_policy_digest="sha256:aaa",
        policy_digest="sha256:aaa",
        detail="policy.yaml:tenants[0].tier: unknown tier 'gold'",
    )
    stored = await audited.record_audit(reload)
    (read,) = await audited.recent_audit(None)
    assert read == stored == replace(reload, id=stored.id)
    assert read.created_at.utcoffset() == timedelta(0)
    assert (read.tenant, read.period, read.old_limit_micros) == ("", None, None)


async def test_the_log_is_newest_first_ties_in_reverse_insertion_and_filtered_by_tenant(
    audited: Ledger,
) -> None:
    old = await audited.record_audit(entry(created_at=T0 - seconds(5)))
    tie_a = await audited.record_audit(entry(tenant="globex"))
    tie_b = await audited.record_audit(entry())
    reload = await audited.record_audit(entry(AuditAction.RELOAD_POLICY, created_at=T0))
    assert await audited.recent_audit(None) == [reload, tie_b, tie_a, old]
    assert await audited.recent_audit("acme") == [tie_b, old]
    assert await audited.recent_audit("globex", limit=1) == [tie_a]
    assert await audited.recent_audit("nobody") == []
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="limit"):
            await audited.recent_audit(None, limit=bad)


async def test_a_budget_change_whose_entry_cannot_be_stored_is_rolled_back(
    audited: Ledger,
) -> None:
    await audited.set_budget_audited("acme", Period.DAY, 10, base_limit_micros=None, audit=entry())
    # The store refuses the row (not an integer for a BIGINT/INTEGER column):
    # the override written just before it in the same transaction must go too.
    broken = entry(AuditAction.TOP_UP_BUDGET, amount_micros="five")
    with pytest.raises(LedgerUnavailable):
        await audited.top_up_audited("acme", Period.DAY, 5, base_limit_micros=0, audit=broken)
    with pytest.raises(LedgerUnavailable):
        await audited.set_budget_audited(
            "acme",
            Period.DAY,
            99,
            base_limit_micros=None,
            audit=replace(broken, action=AuditAction.SET_BUDGET),
        )
    assert await audited.budget_overrides("acme") == {Period.DAY: 10}
    assert len(await audited.recent_audit(None)) == 1


async def test_an_entry_that_does_not_describe_the_change_is_refused(audited: Ledger) -> None:
    with pytest.raises(ValueError, match="tenant and period"):
        await audited.set_budget_audited(
            "acme", Period.MONTH, 1, base_limit_micros=None, audit=entry()
        )
    with pytest.raises(ValueError, match="tenant and period"):
        await audited.top_up_audited(
            "globex", Period.DAY, 1, base_limit_micros=0, audit=entry(AuditAction.TOP_UP_BUDGET)
        )
    with pytest.raises(ValueError, match="actor"):
        await audited.record_audit(entry(actor=""))
    with pytest.raises(ValueError, match="timezone-aware"):
        await audited.record_audit(entry(created_at=T0.replace(tzinfo=None)))
    assert await audited.budget_overrides("acme") == {}
    assert await audited.recent_audit(None) == []


async def test_concurrent_top_ups_each_record_the_cap_they_replaced(
    store: Store, audited: Ledger
) -> None:
    replicas = [audited, *await store.make_many(3)]
    audit = entry(AuditAction.TOP_UP_BUDGET, amount_micros=1)
    await asyncio.gather(
        *(
            replicas[i % len(replicas)].top_up_audited(
                "acme", Period.DAY, 1, base_limit_micros=100, audit=audit
            )
            for i in range(12)
        )
    )
    chain = sorted(
        (e.old_limit_micros, e.new_limit_micros) for e in await audited.recent_audit("acme")
    )
    assert chain == [(100 + i, 101 + i) for i in range(12)]
    assert await audited.budget_overrides("acme") == {Period.DAY: 112}
