"""AdminService: for operators holding an admin key.

Policy status and reload; budget overrides and top-ups (stored in the ledger);
any tenant's usage report (the same one `UsageService.GetUsage` gives the
tenant itself) and the raw usage records. Money is integer micro-USD.

Every SetBudget, TopUpBudget and ReloadPolicy an admin key makes leaves an
entry in the ledger's audit log (`ListAuditLog`), refused ones too. The
actor is the key's hash prefix as listed in the policy, never the key. A
budget change commits together with its entry; a reload changes no ledger
state, so its entry is written after it (and only logged if the ledger is
down: the reload has happened either way).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2

from gateway.admin.audit import OUTCOME_POLICY_INVALID, budget_entry, entry
from gateway.admin.messages import (
    audit_message,
    denial_message,
    page_limit,
    usage_record_message,
)
from gateway.auth import caller
from gateway.errors import FieldViolation, GatewayError, InvalidRequest, NotATenant
from gateway.ledger import (
    AuditAction,
    AuditEntry,
    Ledger,
    LedgerUnavailable,
    Period,
)
from gateway.limits import Limiter
from gateway.policy_store import PolicyStore
from gateway.registry import ModelRegistry
from gateway.registry.catalog import model_infos
from gateway.rpc import abort, answer
from gateway.usage import (
    PB_TO_PERIOD,
    budget_limits,
    budget_status,
    optional_timestamp,
    timestamp,
    usage_report,
    usage_window,
)
from policies import Tenant
from titan.gateway.v1 import admin_service_pb2 as pb
from titan.gateway.v1 import admin_service_pb2_grpc
from titan.gateway.v1 import usage_service_pb2 as usage_pb

INT64_MAX = 2**63 - 1
T = TypeVar("T")
log = logging.getLogger(__name__)


class TenantNotFound(GatewayError):
    """The request names a tenant the serving policy does not define."""

    code = grpc.StatusCode.NOT_FOUND


class NoLedger(GatewayError):
    """Budgets and usage need a ledger, and this gateway was started without one."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class BudgetNotCapped(GatewayError):
    """A top-up of a period that neither the policy nor an override caps."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, tenant: str, period: Period) -> None:
        super().__init__(
            f"tenant {tenant!r} has no {period.value} budget to top up "
            "(the policy does not cap it and there is no override); use SetBudget"
        )
        self.subject = f"tenant:{tenant}"
        self.period = period

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="BUDGET_NOT_CAPPED",
                    subject=self.subject,
                    description=f"no {self.period.value} cap to raise",
                )
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(failure)
        return [packed]


class AdminService(admin_service_pb2_grpc.AdminServiceServicer):
    """Policy status and reload, budgets and usage; every call needs an admin key."""

    def __init__(
        self,
        policies: PolicyStore,
        ledger: Ledger | None = None,
        limiter: Limiter | None = None,
        *,
        global_images_per_minute: int | None = None,
        registry: ModelRegistry | None = None,
    ) -> None:
        self._policies = policies
        self._ledger = ledger
        self._limiter = limiter
        self._global_ipm = global_images_per_minute
        self._registry = registry

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Any
    ) -> pb.ListModelsResponse:
        await _require_admin(context)
        if self._registry is None:
            return pb.ListModelsResponse()
        return pb.ListModelsResponse(models=model_infos(self._registry, datetime.now(UTC).date()))

    async def GetPolicyStatus(
        self, request: pb.GetPolicyStatusRequest, context: Any
    ) -> pb.GetPolicyStatusResponse:
        await _require_admin(context)
        return pb.GetPolicyStatusResponse(status=self._status())

    async def ReloadPolicy(
        self, request: pb.ReloadPolicyRequest, context: Any
    ) -> pb.ReloadPolicyResponse:
        await _require_admin(context)
        before = self._policies.current.digest
        outcome = self._policies.reload()
        status = self._status()
        await self._record_reload(
            entry(context, AuditAction.RELOAD_POLICY, old_policy_digest=before,
                   policy_digest=status.digest),
            outcome.ok, outcome.error,
        )  # fmt: skip
        return pb.ReloadPolicyResponse(status=status)

    async def SetBudget(self, request: pb.SetBudgetRequest, context: Any) -> pb.SetBudgetResponse:
        await _require_admin(context)
        audit = budget_entry(context, AuditAction.SET_BUDGET, request)
        return await answer(context, self._audited(audit, self._set_budget(request, audit)))

    async def TopUpBudget(
        self, request: pb.TopUpBudgetRequest, context: Any
    ) -> pb.TopUpBudgetResponse:
        await _require_admin(context)
        audit = budget_entry(
            context, AuditAction.TOP_UP_BUDGET, request, amount_micros=request.amount_micros
        )
        return await answer(context, self._audited(audit, self._top_up(request, audit)))

    async def ListAuditLog(
        self, request: pb.ListAuditLogRequest, context: Any
    ) -> pb.ListAuditLogResponse:
        await _require_admin(context)
        return await answer(context, self._audit_log(request))

    async def GetTenantUsage(
        self, request: pb.GetTenantUsageRequest, context: Any
    ) -> pb.GetTenantUsageResponse:
        await _require_admin(context)
        return await answer(context, self._tenant_usage(request))

    async def ListUsageRecords(
        self, request: pb.ListUsageRecordsRequest, context: Any
    ) -> pb.ListUsageRecordsResponse:
        await _require_admin(context)
        return await answer(context, self._usage_records(request))

    async def _set_budget(
        self, request: pb.SetBudgetRequest, audit: AuditEntry
    ) -> pb.SetBudgetResponse:
        violations = _tenant_violations(request.tenant_id)
        period = _period(request.period, violations)
        if request.limit_micros < 0:
            violations.append(FieldViolation("limit_micros", "must not be negative"))
        if violations or period is None:
            raise InvalidRequest(violations)
        ledger = self._require_ledger()
        tenant = self._tenant(request.tenant_id)
        await ledger.set_budget_audited(
            tenant.id, period, request.limit_micros,
            base_limit_micros=_policy_limit(tenant, period), audit=audit,
        )  # fmt: skip
        return pb.SetBudgetResponse(budget=await self._budget(ledger, tenant, period))

    async def _top_up(
        self, request: pb.TopUpBudgetRequest, audit: AuditEntry
    ) -> pb.TopUpBudgetResponse:
        violations = _tenant_violations(request.tenant_id)
        period = _period(request.period, violations)
        if request.amount_micros <= 0:
            violations.append(FieldViolation("amount_micros", "must be greater than 0"))
        if violations or period is None:
            raise InvalidRequest(violations)
        ledger = self._require_ledger()
        tenant = self._tenant(request.tenant_id)
        policy_limit = _policy_limit(tenant, period)
        current = (await ledger.budget_overrides(tenant.id)).get(period, policy_limit)
        if current is None:
            raise BudgetNotCapped(tenant.id, period)
        if current > INT64_MAX - request.amount_micros:
            raise InvalidRequest(
                [FieldViolation("amount_micros", f"the cap would exceed {INT64_MAX} micro-USD")]
            )
        await ledger.top_up_audited(
            tenant.id, period, request.amount_micros,
            base_limit_micros=policy_limit or 0, audit=audit,
        )  # fmt: skip
        return pb.TopUpBudgetResponse(budget=await self._budget(ledger, tenant, period))

    async def _tenant_usage(self, request: pb.GetTenantUsageRequest) -> pb.GetTenantUsageResponse:
        now = datetime.now(UTC)
        violations = _tenant_violations(request.tenant_id)
        try:
            since, until = usage_window(
                optional_timestamp(request, "since"), optional_timestamp(request, "until"), now
            )
        except InvalidRequest as exc:
            raise InvalidRequest([*violations, *exc.violations]) from None
        if violations:
            raise InvalidRequest(violations)
        ledger = self._require_ledger()
        tenant = self._tenant(request.tenant_id)
        usage = await usage_report(
            tenant,
            ledger,
            self._limiter,
            since=since,
            until=until,
            now=now,
            global_images_per_minute=self._global_ipm,
        )
        return pb.GetTenantUsageResponse(usage=usage)

    async def ListDenials(
        self, request: pb.ListDenialsRequest, context: Any
    ) -> pb.ListDenialsResponse:
        await _require_admin(context)
        return await answer(context, self._denials(request))

    async def _denials(self, request: pb.ListDenialsRequest) -> pb.ListDenialsResponse:
        limit = page_limit(request.limit)
        ledger = self._require_ledger()
        tenant_id = self._tenant(request.tenant_id).id if request.tenant_id else None
        denials = await ledger.recent_denials(tenant_id, limit=limit)
        return pb.ListDenialsResponse(denials=[denial_message(d) for d in denials])

    async def _usage_records(
        self, request: pb.ListUsageRecordsRequest
    ) -> pb.ListUsageRecordsResponse:
        limit = page_limit(request.limit)
        ledger = self._require_ledger()
        tenant_id = self._tenant(request.tenant_id).id if request.tenant_id else None
        records = await ledger.recent_usage(tenant_id, limit=limit)
        return pb.ListUsageRecordsResponse(records=[usage_record_message(r) for r in records])

    async def _audit_log(self, request: pb.ListAuditLogRequest) -> pb.ListAuditLogResponse:
        limit = page_limit(request.limit)
        entries = await self._require_ledger().recent_audit(request.tenant_id or None, limit=limit)
        return pb.ListAuditLogResponse(entries=[audit_message(e) for e in entries])

    async def _audited(self, audit: AuditEntry, work: Awaitable[T]) -> T:
        """`work` (which records `audit` with its change); a refusal is recorded here."""
        try:
            return await work
        except GatewayError as exc:
            await self._store(replace(audit, outcome=exc.code.name, detail=exc.message))
            raise

    async def _record_reload(self, audit: AuditEntry, ok: bool, error: str) -> None:
        if not ok:
            audit = replace(audit, outcome=OUTCOME_POLICY_INVALID, detail=error)
        await self._store(audit)

    async def _store(self, audit: AuditEntry) -> None:
        """Record an entry that commits with no change; if the ledger cannot
        take it, log it whole (the caller's answer stands)."""
        try:
            if self._ledger is None:
                raise LedgerUnavailable("this gateway runs without a usage ledger")
            await self._ledger.record_audit(audit)
        except LedgerUnavailable:
            log.error("audit entry not stored: %s", audit, exc_info=True)

    async def _budget(
        self, ledger: Ledger, tenant: Tenant, period: Period
    ) -> usage_pb.BudgetStatus:
        """The tenant's standing against `period`'s effective cap now."""
        states = await ledger.budgets(tenant.id, budget_limits(tenant), now=datetime.now(UTC))
        state = next(s for s in states if s.period is period)
        return budget_status(state, tenant.budget.alert_thresholds, overridden=True)

    def _require_ledger(self) -> Ledger:
        if self._ledger is None:
            raise NoLedger("this gateway runs without a usage ledger")
        return self._ledger

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._policies.current.tenants.get(tenant_id)
        if tenant is None:
            raise TenantNotFound(f"no tenant {tenant_id!r} in the serving policy")
        return tenant

    def _status(self) -> pb.PolicyStatus:
        store = self._policies
        policy = store.current
        return pb.PolicyStatus(
            source=str(store.path),
            digest=policy.digest,
            loaded_at=timestamp(store.loaded_at),
            tenant_count=len(policy.tenants),
            rule_count=len(policy.rules),
            last_reload_ok=store.last_reload.ok,
            last_reload_error=store.last_reload.error,
            last_reload_at=timestamp(store.last_reload.at),
        )


async def _require_admin(context: Any) -> None:
    if not caller().admin:
        await abort(context, NotATenant("this RPC needs an admin key"))


def _policy_limit(tenant: Tenant, period: Period) -> int | None:
    return next((b.limit_micros for b in budget_limits(tenant) if b.period is period), None)


def _tenant_violations(tenant_id: str) -> list[FieldViolation]:
    return [] if tenant_id else [FieldViolation("tenant_id", "required")]


def _period(value: usage_pb.BudgetPeriod, violations: list[FieldViolation]) -> Period | None:
    period = PB_TO_PERIOD.get(value)
    if period is None:
        violations.append(FieldViolation("period", "required: DAY, MONTH or TOTAL"))
    return period
