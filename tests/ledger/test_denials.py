"""Contract: refused requests leave a denial record and no spend, on both stores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.ledger import BudgetExhausted, DenialRecord, Ledger, Period

from .support import LEASE_S, PRICE, T0, day, month, seconds, total, usage

LIMITS = [day(10 * PRICE), month(100 * PRICE), total(1000 * PRICE)]


def denial(
    tenant: str,
    request_id: str,
    *,
    at: datetime = T0,
    reason: str = "POLICY_DENIED",
    rule: str = "no-hd-for-free-tier",
    message: str = "hd quality is not allowed on this tier",
) -> DenialRecord:
    return DenialRecord(
        tenant=tenant,
        request_id=request_id,
        reason=reason,
        rule=rule,
        message=message,
        created_at=at,
    )


async def test_a_denial_reads_back_as_recorded(ledger: Ledger) -> None:
    policy = denial("acme", "r1")
    moderation = denial(
        "acme",
        "r2",
        at=T0 + seconds(1),
        reason="MODERATION_BLOCKED",
        rule="moderation:violence",
        message="prompt flagged: violence",
    )
    filtered = denial(
        "acme", "r3", at=T0 + seconds(2), reason="CONTENT_FILTERED", rule="", message=""
    )
    for record in (policy, moderation, filtered):
        await ledger.record_denial(record)

    assert await ledger.recent_denials("acme") == [filtered, moderation, policy]


async def test_times_round_trip_to_the_microsecond_and_come_back_in_utc(ledger: Ledger) -> None:
    berlin = timezone(timedelta(hours=1))
    at = datetime(2025, 3, 14, 13, 0, 0, 123_457, tzinfo=berlin)
    await ledger.record_denial(denial("acme", "r1", at=at))

    (stored,) = await ledger.recent_denials("acme")

    assert stored.created_at == at
    assert stored.created_at.utcoffset() == timedelta(0)


async def test_recent_denials_are_filtered_by_tenant(ledger: Ledger) -> None:
    acme = denial("acme", "r1", at=T0)
    globex = denial("globex", "r1", at=T0 + seconds(1))
    await ledger.record_denial(acme)
    await ledger.record_denial(globex)

    assert await ledger.recent_denials("acme") == [acme]
    assert await ledger.recent_denials("globex") == [globex]
    assert await ledger.recent_denials(None) == [globex, acme]
    assert await ledger.recent_denials("nobody") == []


async def test_recent_denials_are_newest_first_with_ties_in_reverse_insertion_order(
    ledger: Ledger,
) -> None:
    late = denial("acme", "late", at=T0 + seconds(5))
    early = denial("acme", "early", at=T0 - seconds(5))
    tie_first = denial("acme", "tie-1", at=T0)
    tie_second = denial("acme", "tie-2", at=T0)
    for record in (late, early, tie_first, tie_second):  # not in time order
        await ledger.record_denial(record)

    assert await ledger.recent_denials("acme") == [late, tie_second, tie_first, early]


async def test_a_repeated_denial_is_recorded_each_time(ledger: Ledger) -> None:
    first = denial("acme", "r1", at=T0)
    again = denial("acme", "r1", at=T0 + seconds(1))
    await ledger.record_denial(first)
    await ledger.record_denial(again)
    await ledger.record_denial(again)

    assert await ledger.recent_denials("acme") == [again, again, first]


async def test_limit_keeps_the_newest_denials(ledger: Ledger) -> None:
    records = [denial("acme", f"r{i}", at=T0 + seconds(i)) for i in range(5)]
    for record in records:
        await ledger.record_denial(record)
    newest_first = records[::-1]

    assert await ledger.recent_denials("acme", limit=1) == newest_first[:1]
    assert await ledger.recent_denials("acme", limit=3) == newest_first[:3]
    assert await ledger.recent_denials(None, limit=2) == newest_first[:2]
    assert await ledger.recent_denials("acme", limit=1000) == newest_first
    assert await ledger.recent_denials("acme") == newest_first  # default 100


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_limit_must_be_1_to_1000(ledger: Ledger, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        await ledger.recent_denials("acme", limit=limit)


async def test_a_naive_time_or_a_missing_reason_is_refused_and_nothing_is_written(
    ledger: Ledger,
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.record_denial(denial("acme", "r1", at=T0.replace(tzinfo=None)))
    with pytest.raises(ValueError, match="reason"):
        await ledger.record_denial(denial("acme", "r2", reason=""))

    assert await ledger.recent_denials(None) == []


async def test_a_denial_changes_no_budget_state(ledger: Ledger) -> None:
    settled = await ledger.reserve("acme", "r1", PRICE, LIMITS, now=T0, lease_s=LEASE_S)
    await ledger.settle(settled.id, usage("acme", "r1", 0))
    await ledger.reserve("acme", "r2", 3 * PRICE, LIMITS, now=T0, lease_s=LEASE_S)  # in flight
    await ledger.set_budget("acme", Period.DAY, 8 * PRICE)

    states = await ledger.budgets("acme", LIMITS, now=T0)
    assert [(s.spent_micros, s.reserved_micros) for s in states] == [(PRICE, 3 * PRICE)] * 3
    overrides = await ledger.budget_overrides("acme")
    usage_records = await ledger.recent_usage(None)

    await ledger.record_denial(denial("acme", "r3"))
    await ledger.record_denial(
        denial("acme", "r4", reason="MODERATION_BLOCKED", rule="moderation:hate")
    )

    assert await ledger.budgets("acme", LIMITS, now=T0) == states
    assert await ledger.budget_overrides("acme") == overrides
    assert await ledger.recent_usage(None) == usage_records
    assert await ledger.settled_total() == PRICE
    assert len(await ledger.recent_denials("acme")) == 2
    # What was left of the day budget can still be reserved, to the last micro-USD.
    await ledger.reserve("acme", "r5", 4 * PRICE, LIMITS, now=T0, lease_s=LEASE_S)
    with pytest.raises(BudgetExhausted):
        await ledger.reserve("acme", "r6", 1, LIMITS, now=T0, lease_s=LEASE_S)


async def test_a_denied_tenant_with_no_other_activity_has_spent_and_reserved_nothing(
    ledger: Ledger,
) -> None:
    await ledger.record_denial(denial("newcomer", "r1"))

    states = await ledger.budgets("newcomer", LIMITS, now=T0)

    assert [(s.spent_micros, s.reserved_micros) for s in states] == [(0, 0)] * len(LIMITS)
    assert await ledger.settled_total("newcomer") == 0
    assert await ledger.recent_usage("newcomer") == []
