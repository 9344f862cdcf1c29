"""UsageService and the budget/usage half of AdminService, called directly.

A real `SqliteLedger` (in tmp_path) and a `MemoryLimiter` on a frozen clock;
the servicer methods are awaited with a tiny fake context whose aborts raise
`Aborted`, and the caller is set the way the auth interceptor sets it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2

from gateway.admin import AdminService
from gateway.auth import Caller, current_caller
from gateway.ledger import BudgetLimit, LedgerUnavailable, Period, SqliteLedger, UsageRecord
from gateway.limits import MemoryLimiter, RateLimit, RateRequest
from gateway.policy_store import PolicyStore
from gateway.usage import UsageService, budget_limits, rate_requests, slot_key
from policies import Budget, Quotas, Tenant, hash_key, load_policy
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import usage_service_pb2 as pb

TITAN = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"
PRICE = 200_000  # micro-USD per image in these tests
GLOBAL_IPM = 100
LEASE_S = 600.0

POLICY = f"""
version: 1
admin_keys: ["{hash_key("admin-key")}"]
tiers:
  std:
    quotas:
      requests_per_minute: 60
      images_per_minute: 120
      images_per_day: 1000
      max_concurrent_requests: 4
    budget:
      daily_usd: 1
      monthly_usd: 10
      alert_thresholds: [1.0, 0.5, 0.8]
  open: {{}}
tenants:
  - id: acme
    tier: std
    api_keys: ["{hash_key("acme-key")}"]
  - id: beta
    tier: open
    api_keys: ["{hash_key("beta-key")}"]
"""


class Aborted(Exception):
    """What the fake context raises where grpc.aio would end the RPC."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[Any]) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details

    def bad_fields(self) -> set[str]:
        found: set[str] = set()
        for packed in self.details:
            bad = error_details_pb2.BadRequest()
            if packed.Unpack(bad):
                found.update(v.field for v in bad.field_violations)
        return found


class FakeContext:
    async def abort_with_status(self, status: grpc.Status) -> None:
        details: list[Any] = []
        for key, value in status.trailing_metadata or ():
            if key == "grpc-status-details-bin":
                details = list(status_pb2.Status.FromString(value).details)
        raise Aborted(status.code, status.details, details)

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise Aborted(code, details, [])


CTX = FakeContext()


@contextmanager
def acting_as(who: Caller) -> Iterator[None]:
    token = current_caller.set(who)
    try:
        yield
    finally:
        current_caller.reset(token)


@dataclass
class World:
    store: PolicyStore
    ledger: SqliteLedger
    limiter: MemoryLimiter
    usage: UsageService
    admin: AdminService

    def tenant(self, tenant_id: str) -> Tenant:
        return self.store.current.tenants[tenant_id]

    async def get_usage(self, tenant_id: str, **window: datetime) -> pb.GetUsageResponse:
        request = pb.GetUsageRequest(**{k: stamp(v) for k, v in window.items()})
        with acting_as(Caller(tenant=self.tenant(tenant_id))):
            return await self.usage.GetUsage(request, CTX)

    async def bill(
        self, tenant_id: str, request_id: str, costs: list[tuple[str, int]], at: datetime
    ) -> None:
        """Reserve, settle one image per (model, cost), release the rest."""
        tenant = self.tenant(tenant_id)
        total = sum(cost for _, cost in costs)
        reservation = await self.ledger.reserve(
            tenant_id, request_id, total, budget_limits(tenant), now=at, lease_s=LEASE_S
        )
        for index, (model, cost) in enumerate(costs):
            await self.ledger.settle(
                reservation.id, record(tenant_id, request_id, index, model, cost, at)
            )
        await self.ledger.release(reservation.id)


def record(
    tenant: str, request_id: str, index: int, model: str, cost: int, at: datetime
) -> UsageRecord:
    return UsageRecord(
        tenant=tenant,
        request_id=request_id,
        image_index=index,
        model=model,
        task="TEXT_IMAGE",
        width=1024,
        height=1024,
        quality="standard",
        cost_micros=cost,
        image_sha256=hashlib.sha256(f"{request_id}/{index}".encode()).hexdigest(),
        created_at=at,
    )


def stamp(moment: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(moment)
    return result


ADMIN = Caller(admin=True)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    store = PolicyStore(path)
    ledger = SqliteLedger(tmp_path / "ledger.db")
    await ledger.start()
    limiter = MemoryLimiter(clock=lambda: 1_000.0)  # frozen: peek is deterministic
    usage = UsageService(store, ledger, limiter, global_images_per_minute=GLOBAL_IPM)
    admin = AdminService(store, ledger, limiter, global_images_per_minute=GLOBAL_IPM)
    try:
        yield World(store, ledger, limiter, usage, admin)
    finally:
        await ledger.close()


def now() -> datetime:
    return datetime.now(UTC)


# -- the shared helpers ---------------------------------------------------------


def test_budget_limits_follow_the_policy_caps_in_period_order() -> None:
    policy = load_policy(POLICY)
    assert budget_limits(policy.tenants["acme"]) == [
        BudgetLimit(Period.DAY, 1_000_000),
        BudgetLimit(Period.MONTH, 10_000_000),
    ]
    assert budget_limits(policy.tenants["beta"]) == []
    everything = Tenant("t", "x", (), Quotas(), Budget(3, 2, 1))
    assert [b.period for b in budget_limits(everything)] == [Period.DAY, Period.MONTH, Period.TOTAL]
    assert budget_limits(Tenant("t", "x", (), Quotas(), Budget(total_micros=7))) == [
        BudgetLimit(Period.TOTAL, 7)
    ]


def test_rate_requests_cover_each_set_quota() -> None:
    acme = load_policy(POLICY).tenants["acme"]
    assert rate_requests(acme, 3, GLOBAL_IPM) == [
        RateRequest("tenant:acme:rpm", RateLimit(60, 60.0), 1, "requests_per_minute"),
        RateRequest("tenant:acme:ipm", RateLimit(120, 60.0), 3, "images_per_minute"),
        RateRequest("tenant:acme:ipd", RateLimit(1000, 86400.0), 3, "images_per_day"),
        RateRequest("global:ipm", RateLimit(GLOBAL_IPM, 60.0), 3, "global_images_per_minute"),
    ]
    assert [r.key for r in rate_requests(acme, 3, None)] == [
        "tenant:acme:rpm",
        "tenant:acme:ipm",
        "tenant:acme:ipd",
    ]
    only_daily = Tenant("solo", "x", (), Quotas(images_per_day=5), Budget())
    assert rate_requests(only_daily, 2, None) == [
        RateRequest("tenant:solo:ipd", RateLimit(5, 86400.0), 2, "images_per_day")
    ]
    unlimited = load_policy(POLICY).tenants["beta"]
    assert rate_requests(unlimited, 4, None) == []
    assert [r.name for r in rate_requests(unlimited, 4, 9)] == ["global_images_per_minute"]


def test_slot_key_names_the_tenant() -> None:
    assert slot_key(load_policy(POLICY).tenants["acme"]) == "tenant:acme:slots"


# -- GetUsage ---------------------------------------------------------------------


async def test_get_usage_reports_budgets_alerts_quotas_and_usage_by_model(world: World) -> None:
    at = now()
    await world.bill("acme", "r1", [(TITAN, PRICE), (NOVA, PRICE), (TITAN, PRICE)], at)
    await world.bill("beta", "b1", [(TITAN, 999)], at)  # another tenant: never counted
    acme = world.tenant("acme")
    await world.ledger.reserve(  # in flight: reserved, not spent
        "acme", "r2", PRICE, budget_limits(acme), now=at, lease_s=LEASE_S
    )
    assert (await world.limiter.acquire(rate_requests(acme, 3, GLOBAL_IPM))).allowed

    report = await world.get_usage("acme")

    assert report.tenant_id == "acme"
    day, month = report.budgets
    assert day.period == pb.BUDGET_PERIOD_DAY
    assert (day.limit_micros, day.spent_micros, day.reserved_micros) == (1_000_000, 600_000, PRICE)
    assert day.remaining_micros == 200_000
    assert day.used_fraction == pytest.approx(0.8)
    assert list(day.alerts_reached) == [0.5, 0.8]  # ascending; 1.0 not reached
    assert not day.overridden
    assert day.window_start.ToDatetime(tzinfo=UTC) == at.replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    assert day.resets_at.ToDatetime(tzinfo=UTC) - day.window_start.ToDatetime(
        tzinfo=UTC
    ) == timedelta(days=1)
    assert month.period == pb.BUDGET_PERIOD_MONTH
    assert (month.limit_micros, month.spent_micros, month.remaining_micros) == (
        10_000_000,
        600_000,
        9_200_000,
    )
    assert list(month.alerts_reached) == []

    assert [(u.model, u.task_type, u.images, u.cost_micros) for u in report.usage] == [
        (NOVA, "TEXT_IMAGE", 1, PRICE),
        (TITAN, "TEXT_IMAGE", 2, 2 * PRICE),
    ]
    assert (report.window_cost_micros, report.window_images) == (600_000, 3)
    span = report.until.ToDatetime(tzinfo=UTC) - report.since.ToDatetime(tzinfo=UTC)
    assert span == timedelta(hours=24)

    quotas = {q.name: q for q in report.quotas}
    assert [q.name for q in report.quotas] == [
        "requests_per_minute",
        "images_per_minute",
        "images_per_day",
        "global_images_per_minute",
        "max_concurrent_requests",
    ]
    assert (quotas["requests_per_minute"].limit, quotas["requests_per_minute"].available) == (
        60,
        59,
    )
    assert quotas["images_per_minute"].period_seconds == 60
    assert quotas["images_per_minute"].available == 117
    assert (quotas["images_per_day"].period_seconds, quotas["images_per_day"].available) == (
        86400,
        997,
    )
    assert quotas["global_images_per_minute"].available == GLOBAL_IPM - 3
    slots = quotas["max_concurrent_requests"]
    assert (slots.limit, slots.period_seconds) == (4, 0)
    assert not slots.HasField("available")


async def test_get_usage_window_selects_the_records(world: World) -> None:
    at = now()
    old = at - timedelta(days=3)
    await world.bill("acme", "old", [(TITAN, PRICE)], old)
    await world.bill("acme", "new", [(NOVA, PRICE)], at)

    recent = await world.get_usage("acme")
    assert [u.model for u in recent.usage] == [NOVA]

    window = await world.get_usage(
        "acme", since=old - timedelta(hours=1), until=old + timedelta(hours=1)
    )
    assert [(u.model, u.images) for u in window.usage] == [(TITAN, 1)]
    assert window.window_cost_micros == PRICE

    only_since = await world.get_usage("acme", since=old - timedelta(hours=1))
    assert only_since.window_images == 2

    with pytest.raises(Aborted) as caught:
        await world.get_usage("acme", since=at, until=at)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.bad_fields() == {"until"}

    out_of_range = pb.GetUsageRequest(since=Timestamp(seconds=0, nanos=-1))
    with acting_as(Caller(tenant=world.tenant("acme"))), pytest.raises(Aborted) as caught:
        await world.usage.GetUsage(out_of_range, CTX)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.bad_fields() == {"since"}


async def test_tenant_without_caps_or_quotas_gets_empty_lists(world: World) -> None:
    report = await world.get_usage("beta")
    assert report.tenant_id == "beta"
    assert list(report.budgets) == []
    assert [q.name for q in report.quotas] == ["global_images_per_minute"]
    assert (report.window_cost_micros, report.window_images) == (0, 0)


async def test_get_usage_needs_a_tenant_key(world: World) -> None:
    with acting_as(ADMIN), pytest.raises(Aborted) as caught:
        await world.usage.GetUsage(pb.GetUsageRequest(), CTX)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED

    with acting_as(Caller()), pytest.raises(Aborted) as caught:
        await world.usage.GetUsage(pb.GetUsageRequest(), CTX)
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


async def test_ledger_failure_is_unavailable(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise LedgerUnavailable("database is locked")

    monkeypatch.setattr(world.ledger, "budgets", broken)
    with pytest.raises(Aborted) as caught:
        await world.get_usage("acme")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


# -- AdminService -------------------------------------------------------------------


async def admin_call(world: World, method: str, request: Any, who: Caller = ADMIN) -> Any:
    with acting_as(who):
        return await getattr(world.admin, method)(request, CTX)


def admin_requests(tenant_id: str) -> list[tuple[str, Any]]:
    """One valid request for each budget/usage RPC, about `tenant_id`."""
    return [
        (
            "SetBudget",
            admin_pb.SetBudgetRequest(
                tenant_id=tenant_id, period=pb.BUDGET_PERIOD_DAY, limit_micros=5
            ),
        ),
        (
            "TopUpBudget",
            admin_pb.TopUpBudgetRequest(
                tenant_id=tenant_id, period=pb.BUDGET_PERIOD_DAY, amount_micros=1
            ),
        ),
        ("GetTenantUsage", admin_pb.GetTenantUsageRequest(tenant_id=tenant_id)),
        ("ListUsageRecords", admin_pb.ListUsageRecordsRequest(tenant_id=tenant_id)),
    ]


ADMIN_METHODS = [method for method, _ in admin_requests("acme")]


@pytest.mark.parametrize("method", ADMIN_METHODS)
async def test_admin_rpcs_need_an_admin_key(world: World, method: str) -> None:
    request = dict(admin_requests("acme"))[method]
    for who in (Caller(tenant=world.tenant("acme")), Caller()):
        with pytest.raises(Aborted) as caught:
            await admin_call(world, method, request, who)
        assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert await world.ledger.budget_overrides("acme") == {}


@pytest.mark.parametrize("method", ADMIN_METHODS)
async def test_unknown_tenant_is_not_found(world: World, method: str) -> None:
    with pytest.raises(Aborted) as caught:
        await admin_call(world, method, dict(admin_requests("nobody"))[method])
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert "nobody" in caught.value.message
    assert await world.ledger.budget_overrides("nobody") == {}


async def test_set_budget_changes_what_get_usage_reports(world: World) -> None:
    await world.bill("acme", "r1", [(TITAN, PRICE)] * 4, now())  # 0.8 USD of 1 USD
    assert list((await world.get_usage("acme")).budgets[0].alerts_reached) == [0.5, 0.8]

    response = await admin_call(
        world,
        "SetBudget",
        admin_pb.SetBudgetRequest(
            tenant_id="acme", period=pb.BUDGET_PERIOD_DAY, limit_micros=2_000_000
        ),
    )
    assert response.budget.period == pb.BUDGET_PERIOD_DAY
    assert (response.budget.limit_micros, response.budget.remaining_micros) == (
        2_000_000,
        1_200_000,
    )
    assert response.budget.overridden

    day = (await world.get_usage("acme")).budgets[0]
    assert (day.limit_micros, day.spent_micros, day.remaining_micros) == (
        2_000_000,
        800_000,
        1_200_000,
    )
    assert list(day.alerts_reached) == []  # 0.4 of the new cap
    assert day.overridden

    # A period the policy leaves open gets capped; TOTAL never resets.
    await admin_call(
        world,
        "SetBudget",
        admin_pb.SetBudgetRequest(tenant_id="acme", period=pb.BUDGET_PERIOD_TOTAL, limit_micros=0),
    )
    total = (await world.get_usage("acme")).budgets[-1]
    assert total.period == pb.BUDGET_PERIOD_TOTAL
    assert (total.limit_micros, total.remaining_micros, total.used_fraction) == (0, 0, 1.0)
    assert list(total.alerts_reached) == [0.5, 0.8, 1.0]
    assert not total.HasField("resets_at")
    assert total.window_start.ToDatetime(tzinfo=UTC) == datetime(1970, 1, 1, tzinfo=UTC)


async def test_top_up_raises_the_cap_from_the_policy_or_the_override(world: World) -> None:
    async def top_up(period: Any, amount: int) -> Any:
        return await admin_call(
            world,
            "TopUpBudget",
            admin_pb.TopUpBudgetRequest(tenant_id="acme", period=period, amount_micros=amount),
        )

    first = await top_up(pb.BUDGET_PERIOD_DAY, 500_000)
    assert first.budget.limit_micros == 1_500_000  # the policy's 1 USD + 0.5 USD
    second = await top_up(pb.BUDGET_PERIOD_DAY, 500_000)
    assert second.budget.limit_micros == 2_000_000
    assert (await world.get_usage("acme")).budgets[0].limit_micros == 2_000_000
    assert await world.ledger.budget_overrides("acme") == {Period.DAY: 2_000_000}

    with pytest.raises(Aborted) as caught:
        await top_up(pb.BUDGET_PERIOD_TOTAL, 500_000)  # the policy does not cap TOTAL
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION

    await admin_call(
        world,
        "SetBudget",
        admin_pb.SetBudgetRequest(
            tenant_id="acme", period=pb.BUDGET_PERIOD_TOTAL, limit_micros=100
        ),
    )
    topped = await top_up(pb.BUDGET_PERIOD_TOTAL, 50)
    assert topped.budget.limit_micros == 150
    assert not topped.budget.HasField("resets_at")


async def test_budget_requests_are_validated(world: World) -> None:
    with pytest.raises(Aborted) as caught:
        await admin_call(world, "SetBudget", admin_pb.SetBudgetRequest(limit_micros=-1))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.bad_fields() == {"tenant_id", "period", "limit_micros"}

    for amount in (0, -5):
        with pytest.raises(Aborted) as caught:
            await admin_call(
                world,
                "TopUpBudget",
                admin_pb.TopUpBudgetRequest(
                    tenant_id="acme", period=pb.BUDGET_PERIOD_DAY, amount_micros=amount
                ),
            )
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.bad_fields() == {"amount_micros"}

    with pytest.raises(Aborted) as caught:
        await admin_call(
            world,
            "TopUpBudget",
            admin_pb.TopUpBudgetRequest(
                tenant_id="acme", period=pb.BUDGET_PERIOD_DAY, amount_micros=2**63 - 1
            ),
        )
    assert caught.value.bad_fields() == {"amount_micros"}
    assert await world.ledger.budget_overrides("acme") == {}


async def test_get_tenant_usage_is_the_tenants_own_report(world: World) -> None:
    at = now()
    await world.bill("acme", "r1", [(TITAN, PRICE), (NOVA, PRICE)], at)
    window = {"since": at - timedelta(hours=2), "until": at + timedelta(hours=1)}

    response = await admin_call(
        world,
        "GetTenantUsage",
        admin_pb.GetTenantUsageRequest(
            tenant_id="acme", **{k: stamp(v) for k, v in window.items()}
        ),
    )
    assert response.usage == await world.get_usage("acme", **window)
    assert response.usage.window_cost_micros == 2 * PRICE

    with pytest.raises(Aborted) as caught:
        await admin_call(
            world,
            "GetTenantUsage",
            admin_pb.GetTenantUsageRequest(since=stamp(at), until=stamp(at - timedelta(1))),
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.bad_fields() == {"tenant_id", "until"}


async def test_list_usage_records_limit_and_tenant_filter(world: World) -> None:
    at = now()
    for i in range(3):
        await world.bill("acme", f"a{i}", [(TITAN, PRICE + i)], at + timedelta(seconds=i))
    await world.bill("beta", "b0", [(NOVA, 7)], at + timedelta(seconds=10))

    async def listing(**fields: Any) -> list[admin_pb.UsageRecord]:
        request = admin_pb.ListUsageRecordsRequest(**fields)
        return list((await admin_call(world, "ListUsageRecords", request)).records)

    everything = await listing()
    assert [r.request_id for r in everything] == ["b0", "a2", "a1", "a0"]  # newest first
    assert [r.request_id for r in await listing(limit=2)] == ["b0", "a2"]
    assert [r.request_id for r in await listing(tenant_id="acme", limit=2)] == ["a2", "a1"]
    assert [r.tenant_id for r in await listing(tenant_id="beta")] == ["beta"]

    newest_acme = (await listing(tenant_id="acme", limit=1))[0]
    expected = record("acme", "a2", 0, TITAN, PRICE + 2, at + timedelta(seconds=2))
    assert newest_acme == admin_pb.UsageRecord(
        tenant_id="acme",
        request_id="a2",
        image_index=0,
        model=TITAN,
        task="TEXT_IMAGE",
        width=1024,
        height=1024,
        quality="standard",
        cost_micros=PRICE + 2,
        image_sha256=expected.image_sha256,
        created_at=stamp(expected.created_at),
    )

    for bad in (-1, 1001):
        with pytest.raises(Aborted) as caught:
            await listing(limit=bad)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.bad_fields() == {"limit"}
    assert len(await listing(limit=1000)) == 4


async def test_admin_without_a_ledger_keeps_policy_rpcs(world: World) -> None:
    admin = AdminService(world.store)
    with acting_as(ADMIN):
        status = await admin.GetPolicyStatus(admin_pb.GetPolicyStatusRequest(), CTX)
        assert status.status.tenant_count == 2
        with pytest.raises(Aborted) as caught:
            await admin.GetTenantUsage(admin_pb.GetTenantUsageRequest(tenant_id="acme"), CTX)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_admin_report_without_a_limiter_has_no_availability(world: World) -> None:
    admin = AdminService(world.store, world.ledger)
    with acting_as(ADMIN):
        response = await admin.GetTenantUsage(admin_pb.GetTenantUsageRequest(tenant_id="acme"), CTX)
    assert [q.name for q in response.usage.quotas] == [
        "requests_per_minute",
        "images_per_minute",
        "images_per_day",
        "max_concurrent_requests",
    ]
    assert not any(q.HasField("available") for q in response.usage.quotas)
