"""Admission and settlement: the money path of one request.

    admit   rate limits (all-or-nothing) → a concurrency slot (a lease) →
            an atomic budget reservation of the estimate (a lease)
    settle  one usage record per delivered image, committed before the image
            is sent (a delivered image is never unbilled)
    finish  release what is left of the reservation and the slot

While a request runs its leases are renewed; if the replica dies they expire
and the budget and slot come back by themselves. Everything here goes through
the `Ledger` and `Limiter` interfaces, so the same code runs on SQLite and
memory (one replica) or PostgreSQL and Redis (many).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry import trace

from gateway.admission.leases import LeaseKeeper
from gateway.alerts import AlertNotifier, BudgetAlert
from gateway.errors import BudgetRefused, QuotaExceeded
from gateway.ledger import (
    BudgetExhausted,
    BudgetState,
    DenialRecord,
    Ledger,
    Period,
    Reservation,
    UsageRecord,
)
from gateway.limits import Limiter, RateRequest
from gateway.observe import Observer
from gateway.usage import budget_limits, rate_requests, slot_key
from policies import Tenant, UsageFacts

log = logging.getLogger(__name__)


@dataclass
class Ticket:
    """What one admitted request holds until `finish`.

    `lease_lost` turns True when a renewal is refused (the reservation is
    gone) or no renewal has succeeded for a whole lease: the request then
    starts no more backend calls (what is in flight settles, fenced)."""

    tenant: Tenant
    request_id: str
    reservation: Reservation
    slot: str | None = None
    settled: set[int] = field(default_factory=set)
    lease_lost: bool = False
    renewed_at: float = field(default_factory=time.monotonic)

    def live(self) -> bool:
        """Whether the request may still start backend calls."""
        return not self.lease_lost


class Admission:
    """Quotas and budget for every request, on one ledger and one limiter."""

    def __init__(
        self,
        ledger: Ledger,
        limiter: Limiter,
        *,
        lease_s: float,
        global_images_per_minute: int | None = None,
        observer: Observer | None = None,
        alerts: AlertNotifier | None = None,
    ) -> None:
        self._observer = observer or Observer.noop()
        self._alerts = alerts or AlertNotifier()
        self._ledger = ledger
        self._limiter = limiter
        self._lease_s = lease_s
        self._leases = LeaseKeeper(ledger, limiter, lease_s)
        self._global_ipm = global_images_per_minute
        # (tenant, period) -> (window start, used fraction last seen)
        self._fractions: dict[tuple[str, str], tuple[datetime, float]] = {}

    async def usage_facts(self, tenant: Tenant, now: datetime) -> UsageFacts:
        """The usage the policy's rules may look at (budget used, images so far)."""
        states = await self._ledger.budgets(tenant.id, budget_limits(tenant), now=now)
        for state in states:
            self._observer.budgets[(tenant.id, state.period.value)] = state.remaining_micros
        used = max((s.used_fraction for s in states), default=0.0)
        day = next((s for s in states if s.period is Period.DAY), None)
        consumed = await self._consumed(tenant)
        return UsageFacts(
            budget_used_fraction=used,
            spent_today_micros=day.spent_micros if day else 0,
            images_today=consumed.get("images_per_day", 0),
            images_this_minute=consumed.get("images_per_minute", 0),
            requests_this_minute=consumed.get("requests_per_minute", 0),
        )

    async def admit(
        self, tenant: Tenant, request_id: str, images: int, estimate_micros: int, now: datetime
    ) -> Ticket:
        """Take the quotas and reserve the estimate, or raise; nothing is held on refusal."""
        with self._observer.tracer.start_as_current_span("admission") as span:
            span.set_attribute("titan.estimated_cost_micros", estimate_micros)
            try:
                ticket = await self._admit(tenant, request_id, images, estimate_micros, now)
            except QuotaExceeded as exc:
                self._refused(span, exc.quota)
                raise
            except BudgetRefused as exc:
                self._refused(span, f"budget_{exc.metadata['period']}")
                raise
            span.set_attribute("titan.reserved_micros", ticket.reservation.amount_micros)
            return ticket

    def _refused(self, span: trace.Span, quota: str) -> None:
        span.set_attribute("titan.refused_by", quota)
        self._observer.instruments.quota_refusal(quota)

    async def _admit(
        self, tenant: Tenant, request_id: str, images: int, estimate_micros: int, now: datetime
    ) -> Ticket:
        await self._take_rates(tenant, images)
        slot = await self._take_slot(tenant)
        try:
            reservation = await self._ledger.reserve(
                tenant.id, request_id, estimate_micros, budget_limits(tenant),
                now=now, lease_s=self._lease_s,
            )  # fmt: skip
        except BudgetExhausted as exc:
            await self._release_slot(tenant, slot)
            raise _budget_refused(exc) from exc
        except BaseException:
            await self._release_slot(tenant, slot)
            raise
        return Ticket(tenant, request_id, reservation, slot)

    async def settle(self, ticket: Ticket, record: UsageRecord) -> None:
        """Bill one image; committed before the caller sends it. Raises
        `ReservationLost` (nothing billed) when the lease was lost and the
        budget no longer covers the image."""
        await self._ledger.settle(ticket.reservation.id, record, budget_limits(ticket.tenant))
        ticket.settled.add(record.image_index)

    async def finish(self, ticket: Ticket) -> None:
        """Give back what the request did not use. Safe to call once per ticket."""
        released = await self._ledger.release(ticket.reservation.id)
        await self._release_slot(ticket.tenant, ticket.slot)
        if released:
            log.debug("request %s released %d micro-USD", ticket.request_id, released)
        if ticket.settled and budget_limits(ticket.tenant):
            await self._after_spend(ticket.tenant, ticket.request_id)

    async def _after_spend(self, tenant: Tenant, request_id: str) -> None:
        """Refresh the budget gauge's reading and log once each time a budget's
        used fraction crosses an alert threshold, and hand the crossing to the
        alert notifier (which delivers it in the background).

        The last fraction seen is kept per replica, so after a restart a budget
        already past a threshold is reported once more.
        """
        for state in await self.budgets(tenant, _now()):
            self._observer.budgets[(tenant.id, state.period.value)] = state.remaining_micros
            key = (tenant.id, state.period.value)
            window, before = self._fractions.get(key, (state.window_start, 0.0))
            if window != state.window_start:  # a new day or month starts from zero
                before = 0.0
            self._fractions[key] = (state.window_start, state.used_fraction)
            for threshold in tenant.budget.alert_thresholds:
                if before < threshold <= state.used_fraction:
                    log.warning(
                        "budget alert: tenant %s %s budget %.0f%% used (threshold %.0f%%)",
                        tenant.id, state.period.value, state.used_fraction * 100,
                        threshold * 100,
                        extra={"tenant": tenant.id, "period": state.period.value,
                               "threshold": threshold, "used_fraction": state.used_fraction},
                    )  # fmt: skip
                    self._alerts.publish(_alert(state, threshold, request_id))

    def hold(self, ticket: Ticket) -> None:
        """Keep the ticket's leases alive (renewed with every other request's,
        `leases.LeaseKeeper`) until `let_go`. A refused renewal, or none that
        succeeded for a whole lease, marks the lease lost: the request starts
        no more backend calls."""
        self._leases.hold(ticket)

    def let_go(self, ticket: Ticket) -> None:
        self._leases.let_go(ticket)

    async def sweep_forever(self) -> None:
        """Delete expired reservations now and then (reserve ignores them anyway)."""
        while True:
            await asyncio.sleep(self._lease_s)
            with contextlib.suppress(Exception):
                swept = await self._ledger.sweep(now=_now())
                if swept:
                    log.info("swept %d expired reservations", swept)

    async def record_denial(self, record: DenialRecord) -> None:
        """Keep a refused request on record (it spends nothing)."""
        await self._ledger.record_denial(record)

    async def budgets(self, tenant: Tenant, now: datetime) -> list[BudgetState]:
        return await self._ledger.budgets(tenant.id, budget_limits(tenant), now=now)

    async def _take_rates(self, tenant: Tenant, images: int) -> None:
        requests = rate_requests(tenant, images, self._global_ipm)
        if not requests:
            return
        decision = await self._limiter.acquire(requests)
        if decision.allowed:
            return
        refused = decision.refused
        quota = refused.name if refused else "rate"
        raise QuotaExceeded(
            _rate_message(refused, decision.retry_after_s),
            quota,
            f"tenant:{tenant.id}",
            decision.retry_after_s,
        )

    async def _take_slot(self, tenant: Tenant) -> str | None:
        limit = tenant.quotas.max_concurrent_requests
        if limit is None:
            return None
        decision = await self._limiter.acquire_slot(slot_key(tenant), limit, lease_s=self._lease_s)
        if decision.allowed:
            return decision.slot_id
        raise QuotaExceeded(
            f"{limit} concurrent requests already running; retry in {decision.retry_after_s:.1f}s",
            "max_concurrent_requests",
            f"tenant:{tenant.id}",
            max(decision.retry_after_s, 0.001),
        )

    async def _release_slot(self, tenant: Tenant, slot: str | None) -> None:
        if slot is not None:
            await self._limiter.release_slot(slot_key(tenant), slot)

    async def _consumed(self, tenant: Tenant) -> dict[str, int]:
        """Units used in each rate window (limit minus what is available now)."""
        used: dict[str, int] = {}
        for request in rate_requests(tenant, 0, None):
            available = await self._limiter.peek(request)
            # GCRA refills continuously, so "used" is fractional; round to the
            # nearest whole unit (truncating would hide the last image sent).
            used[request.name] = max(0, round(request.limit.capacity - available))
        return used


def _rate_message(refused: RateRequest | None, retry_after_s: float) -> str:
    if refused is None:
        return "rate limit reached"
    if retry_after_s == float("inf"):
        return (
            f"asks for {refused.cost} units, more than the {refused.name} quota "
            f"({refused.limit.limit} per {refused.limit.period_s:g}s) ever allows at once"
        )
    return (
        f"{refused.name} quota of {refused.limit.limit} per {refused.limit.period_s:g}s "
        f"reached; retry in {retry_after_s:.2f}s"
    )


def _budget_refused(exc: BudgetExhausted) -> BudgetRefused:
    resets = exc.resets_at.isoformat() if exc.resets_at else ""
    when = f"resets at {resets}" if resets else "does not reset (top it up)"
    message = (
        f"the {exc.period.value} budget cannot cover this request: "
        f"{exc.remaining_micros / 1e6:.6f} USD left of {exc.limit_micros / 1e6:.6f} USD; {when}"
    )
    metadata = {
        "period": exc.period.value,
        "remaining_micros": str(exc.remaining_micros),
        "limit_micros": str(exc.limit_micros),
        "resets_at": resets,
    }
    return BudgetRefused(message, metadata)


def _alert(state: BudgetState, threshold: float, request_id: str) -> BudgetAlert:
    return BudgetAlert(
        tenant=state.tenant,
        period=state.period.value,
        threshold=threshold,
        used_fraction=state.used_fraction,
        spent_micros=state.spent_micros,
        limit_micros=state.limit_micros,
        window_start=state.window_start,
        resets_at=state.resets_at,
        crossed_at=_now(),
        request_id=request_id,
    )


def _now() -> datetime:
    return datetime.now(UTC)
