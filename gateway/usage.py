"""UsageService, and the tenant → limits mapping the money path shares.

`budget_limits`, `rate_requests` and `slot_key` turn a tenant's policy into
what the ledger and the limiter enforce; admission (taking quotas and budget)
and the usage report (showing them) both use them, so both see the same keys
and limits. `usage_report` builds the one usage report that both
`UsageService.GetUsage` (the calling tenant) and
`AdminService.GetTenantUsage` (any tenant) return.

Money is integer micro-USD everywhere (1 USD = 1_000_000), never float.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.auth import caller
from gateway.errors import (
    FieldViolation,
    InvalidRequest,
    NotATenant,
)
from gateway.ledger import BudgetLimit, BudgetState, Ledger, Period
from gateway.limits import Limiter, RateLimit, RateRequest
from gateway.policy_store import PolicyStore
from gateway.rpc import abort, answer
from policies import Tenant
from titan.gateway.v1 import usage_service_pb2 as pb
from titan.gateway.v1 import usage_service_pb2_grpc

MINUTE_S = 60.0
DAY_S = 86_400.0
DEFAULT_WINDOW = timedelta(hours=24)

PERIOD_TO_PB: dict[Period, pb.BudgetPeriod] = {
    Period.DAY: pb.BUDGET_PERIOD_DAY,
    Period.MONTH: pb.BUDGET_PERIOD_MONTH,
    Period.TOTAL: pb.BUDGET_PERIOD_TOTAL,
}
PB_TO_PERIOD: dict[pb.BudgetPeriod, Period] = {v: k for k, v in PERIOD_TO_PB.items()}


# -- the tenant's limits, as the ledger and the limiter see them --------------


def budget_limits(tenant: Tenant) -> list[BudgetLimit]:
    """The tenant's policy caps: DAY, MONTH, TOTAL for each one set, in that order."""
    caps = (
        (Period.DAY, tenant.budget.daily_micros),
        (Period.MONTH, tenant.budget.monthly_micros),
        (Period.TOTAL, tenant.budget.total_micros),
    )
    return [BudgetLimit(period, micros) for period, micros in caps if micros is not None]


def rate_requests(
    tenant: Tenant, images: int, global_images_per_minute: int | None
) -> list[RateRequest]:
    """The rate limits one request of `images` images takes (only the limits that are set).

    One request unit per minute, `images` units per minute and per day for the
    tenant, and `images` units of the gateway-wide images-per-minute cap.
    """
    quotas = tenant.quotas
    prefix = f"tenant:{tenant.id}"
    wanted = (
        (f"{prefix}:rpm", quotas.requests_per_minute, MINUTE_S, 1, "requests_per_minute"),
        (f"{prefix}:ipm", quotas.images_per_minute, MINUTE_S, images, "images_per_minute"),
        (f"{prefix}:ipd", quotas.images_per_day, DAY_S, images, "images_per_day"),
        ("global:ipm", global_images_per_minute, MINUTE_S, images, "global_images_per_minute"),
    )
    return [
        RateRequest(key=key, limit=RateLimit(limit, period_s), cost=cost, name=name)
        for key, limit, period_s, cost, name in wanted
        if limit is not None
    ]


def slot_key(tenant: Tenant) -> str:
    """The limiter key of the tenant's concurrency slots."""
    return f"tenant:{tenant.id}:slots"


# -- errors --------------------------------------------------------------------


# -- the usage window ------------------------------------------------------------


def usage_window(
    since: Timestamp | None, until: Timestamp | None, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until) from optional request timestamps: until defaults to now, since
    to 24 hours before until. InvalidRequest names every bad field."""
    violations: list[FieldViolation] = []
    end = _instant(until, "until", violations) or now
    start = _instant(since, "since", violations) or _before(end, DEFAULT_WINDOW)
    if not violations and start >= end:
        violations.append(FieldViolation("until", "must be after since"))
    if violations:
        raise InvalidRequest(violations)
    return start, end


def _before(moment: datetime, span: timedelta) -> datetime:
    """`moment - span`, or the earliest datetime when that is out of range."""
    try:
        return moment - span
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _instant(
    stamp: Timestamp | None, field: str, violations: list[FieldViolation]
) -> datetime | None:
    if stamp is None:
        return None
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        violations.append(FieldViolation(field, f"not a valid timestamp: {exc}"))
        return None


# -- the report --------------------------------------------------------------------


async def usage_report(
    tenant: Tenant,
    ledger: Ledger,
    limiter: Limiter | None,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    global_images_per_minute: int | None = None,
) -> pb.GetUsageResponse:
    """Where `tenant` stands now (budgets, quotas) and its usage in [since, until).

    Without a limiter the quotas carry no `available`.
    """
    states = await ledger.budgets(tenant.id, budget_limits(tenant), now=now)
    overrides = await ledger.budget_overrides(tenant.id)
    groups = await ledger.usage_summary(tenant.id, since=since, until=until)
    thresholds = tenant.budget.alert_thresholds
    usage = [
        pb.UsageByModel(model=g.model, task_type=g.task, images=g.images, cost_micros=g.cost_micros)
        for g in groups
    ]
    return pb.GetUsageResponse(
        tenant_id=tenant.id,
        budgets=[budget_status(s, thresholds, s.period in overrides) for s in states],
        quotas=await quota_statuses(tenant, limiter, global_images_per_minute),
        usage=usage,
        window_cost_micros=sum(g.cost_micros for g in groups),
        window_images=sum(g.images for g in groups),
        since=timestamp(since),
        until=timestamp(until),
    )


def budget_status(
    state: BudgetState, alert_thresholds: tuple[float, ...], overridden: bool
) -> pb.BudgetStatus:
    """One budget's standing; `alerts_reached` are the thresholds its used fraction reached."""
    used = state.used_fraction
    status = pb.BudgetStatus(
        period=PERIOD_TO_PB[state.period],
        limit_micros=state.limit_micros,
        spent_micros=state.spent_micros,
        reserved_micros=state.reserved_micros,
        remaining_micros=state.remaining_micros,
        window_start=timestamp(state.window_start),
        used_fraction=used,
        alerts_reached=sorted(t for t in alert_thresholds if used >= t),
        overridden=overridden,
    )
    if state.resets_at is not None:
        status.resets_at.CopyFrom(timestamp(state.resets_at))
    return status


async def quota_statuses(
    tenant: Tenant, limiter: Limiter | None, global_images_per_minute: int | None
) -> list[pb.QuotaStatus]:
    """Each rate quota with the whole units available now, then the concurrency limit."""
    statuses = []
    for request in rate_requests(tenant, 0, global_images_per_minute):
        status = pb.QuotaStatus(
            name=request.name,
            limit=request.limit.limit,
            period_seconds=round(request.limit.period_s),
        )
        if limiter is not None:
            available = await limiter.peek(request)
            status.available = max(0, math.floor(available))
        statuses.append(status)
    concurrent = tenant.quotas.max_concurrent_requests
    if concurrent is not None:
        statuses.append(pb.QuotaStatus(name="max_concurrent_requests", limit=concurrent))
    return statuses


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def optional_timestamp(message: Any, field: str) -> Timestamp | None:
    """`message.<field>` when it is set, else None."""
    if message.HasField(field):
        stamp: Timestamp = getattr(message, field)
        return stamp
    return None


# -- the service -------------------------------------------------------------------


class UsageService(usage_service_pb2_grpc.UsageServiceServicer):
    """The calling tenant's own budgets, quotas and usage (never another tenant's)."""

    def __init__(
        self,
        policies: PolicyStore,
        ledger: Ledger,
        limiter: Limiter,
        *,
        global_images_per_minute: int | None = None,
    ) -> None:
        self._policies = policies
        self._ledger = ledger
        self._limiter = limiter
        self._global_ipm = global_images_per_minute

    async def GetUsage(self, request: pb.GetUsageRequest, context: Any) -> pb.GetUsageResponse:
        who = caller()
        if who.tenant is None:
            if not who.admin:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "missing or unknown API key (send 'authorization: Bearer <key>')",
                )
            await abort(
                context,
                NotATenant(
                    "GetUsage needs a tenant key; operators use AdminService.GetTenantUsage"
                ),
            )
        return await answer(context, self._report(who.tenant, request))

    async def _report(self, tenant: Tenant, request: pb.GetUsageRequest) -> pb.GetUsageResponse:
        now = datetime.now(UTC)
        since, until = usage_window(
            optional_timestamp(request, "since"), optional_timestamp(request, "until"), now
        )
        return await usage_report(
            tenant,
            self._ledger,
            self._limiter,
            since=since,
            until=until,
            now=now,
            global_images_per_minute=self._global_ipm,
        )
