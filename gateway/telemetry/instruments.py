"""The gateway's metric instruments, behind typed record methods.

This module uses the OpenTelemetry *API* only (STYLE rule 9): it works with
whatever provider the application installed, or with a provider handed in
explicitly (tests). Callers record facts through the methods of `Instruments`
and never build attribute dicts by hand, so label names cannot drift between
call sites and the dashboard.

Units are UCUM (``s``, and ``{image}``, ``{request}`` … for counts: a
curly-brace annotation on the unity) with one deliberate exception, money.

Money: the ledger's integer micro-USD are the source of truth. The cost
counter adds ``cost_micros / 1_000_000`` as a float so that dashboards read
dollars; a float sum of micro-dollar amounts agrees with the ledger to the
micro-dollar when rounded to 6 decimals (doubles hold 15–16 significant
digits, so totals up to ~$10⁹ keep their sixth decimal). The cost counter and
the budget gauge carry the unit ``USD``, the ISO 4217 code: UCUM has no
currencies, and its only legal spelling, the annotation ``{USD}`` (or
``{micro_USD}`` for an integer counter), means "dimensionless" and is dropped
by the Prometheus translation, which would publish an unlabelled
``titan_gateway_cost_total``. ``USD`` keeps the unit in the series name
(``titan_gateway_cost_USD_total``, ``titan_gateway_budget_remaining_USD``),
which the dashboard and its test read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

from opentelemetry import metrics, trace

INSTRUMENTATION_NAME: Final = "titan_gateway"

# Instrument names, shared with the SDK module's views and the dashboard test.
IMAGES: Final = "titan_gateway.images"
COST: Final = "titan_gateway.cost"
REQUEST_DURATION: Final = "titan_gateway.request.duration"
TIME_TO_FIRST_IMAGE: Final = "titan_gateway.time_to_first_image"
BACKEND_DURATION: Final = "titan_gateway.backend.duration"
POLICY_DECISIONS: Final = "titan_gateway.policy.decisions"
MODERATION_BLOCKS: Final = "titan_gateway.moderation.blocks"
QUOTA_REFUSALS: Final = "titan_gateway.quota.refusals"
BACKEND_RETRIES: Final = "titan_gateway.backend.retries"
BACKEND_THROTTLES: Final = "titan_gateway.backend.throttles"
BUDGET_REMAINING: Final = "titan_gateway.budget.remaining"

ImageOutcome = Literal["delivered", "failed", "filtered"]
#: How one backend call ended: an image, an error, an output content filter,
#: throttling (after retries), or the caller going away.
BackendOutcome = Literal["ok", "failed", "filtered", "throttled", "cancelled"]
RetryReason = Literal["throttled", "unavailable"]

#: What a budget callback yields: (tenant, period, remaining micro-USD).
BudgetReading = tuple[str, str, int]
BudgetCallback = Callable[[], Iterable[BudgetReading]]

_MICROS_PER_USD: Final = 1_000_000
_PIXELS_512: Final = 512 * 512
_PIXELS_1024: Final = 1024 * 1024


def size_class(width: int, height: int) -> str:
    """Bucket an image size by pixel count, keeping the label's cardinality at three."""
    pixels = width * height
    if pixels <= _PIXELS_512:
        return "<=512x512"
    if pixels <= _PIXELS_1024:
        return "<=1024x1024"
    return ">1024x1024"


def get_tracer(tracer_provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The gateway's tracer, from `tracer_provider` or the global provider."""
    return trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)


class _BudgetSource:
    """The slot behind the budget gauge: instruments are created once, with
    their callbacks, so the gauge's callback delegates to whatever the caller
    supplies later through `Instruments.observe_budgets`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callback: BudgetCallback | None = None

    def set(self, callback: BudgetCallback) -> None:
        with self._lock:
            self._callback = callback

    def observe(self, _options: metrics.CallbackOptions) -> Iterator[metrics.Observation]:
        with self._lock:
            callback = self._callback
        if callback is None:
            return
        for tenant, period, remaining_micros in callback():
            attributes = {"tenant": tenant, "period": period}
            yield metrics.Observation(remaining_micros / _MICROS_PER_USD, attributes)


@dataclass(frozen=True)
class Instruments:
    """Every metric instrument of the gateway, with one record method each."""

    _images: metrics.Counter
    _cost: metrics.Counter
    _request_duration: metrics.Histogram
    _time_to_first_image: metrics.Histogram
    _backend_duration: metrics.Histogram
    _policy_decisions: metrics.Counter
    _moderation_blocks: metrics.Counter
    _quota_refusals: metrics.Counter
    _backend_retries: metrics.Counter
    _backend_throttles: metrics.Counter
    _budget_source: _BudgetSource = field(repr=False)

    @classmethod
    def create(cls, meter: metrics.Meter | None = None) -> Instruments:
        """Create the instruments on `meter` (default: the global provider's)."""
        m = meter if meter is not None else metrics.get_meter(INSTRUMENTATION_NAME)
        budget_source = _BudgetSource()
        m.create_observable_gauge(
            BUDGET_REMAINING,
            callbacks=[budget_source.observe],
            unit="USD",
            description="Budget left per tenant and period.",
        )
        return cls(
            _images=m.create_counter(IMAGES, "{image}", "Images by outcome."),
            _cost=m.create_counter(COST, "USD", "Settled spend (float view of ledger micro-USD)."),
            _request_duration=m.create_histogram(REQUEST_DURATION, "s", "RPC duration."),
            _time_to_first_image=m.create_histogram(
                TIME_TO_FIRST_IMAGE, "s", "From request start to the first image sent."
            ),
            _backend_duration=m.create_histogram(BACKEND_DURATION, "s", "One backend call."),
            _policy_decisions=m.create_counter(POLICY_DECISIONS, "{decision}", "Policy effects."),
            _moderation_blocks=m.create_counter(MODERATION_BLOCKS, "{request}", "Blocked prompts."),
            _quota_refusals=m.create_counter(QUOTA_REFUSALS, "{request}", "Quota refusals."),
            _backend_retries=m.create_counter(BACKEND_RETRIES, "{retry}", "Backend retries."),
            _backend_throttles=m.create_counter(
                BACKEND_THROTTLES, "{response}", "Backend throttling responses."
            ),
            _budget_source=budget_source,
        )

    def image(
        self,
        tenant: str,
        model: str,
        task_type: str,
        quality: str,
        size_class: str,
        outcome: ImageOutcome,
        route_arm: str = "",
    ) -> None:
        """Count one image with its final outcome (and its A/B arm, if routed by a split)."""
        attributes = _image_attributes(tenant, model, task_type, quality, size_class)
        attributes["outcome"] = outcome
        if route_arm:
            attributes["route_arm"] = route_arm
        self._images.add(1, attributes)

    def cost(
        self,
        cost_micros: int,
        tenant: str,
        model: str,
        task_type: str,
        quality: str,
        size_class: str,
        route_arm: str = "",
    ) -> None:
        """Add settled spend, given in ledger micro-USD, as USD."""
        attributes = _image_attributes(tenant, model, task_type, quality, size_class)
        if route_arm:
            attributes["route_arm"] = route_arm
        self._cost.add(cost_micros / _MICROS_PER_USD, attributes)

    def request_duration(self, seconds: float, method: str, status_code: str, tenant: str) -> None:
        """Record one RPC: `method` as ``service/Method``, `status_code` as the
        gRPC status name (``"OK"``, ``"INVALID_ARGUMENT"`` …)."""
        attributes = {
            "rpc.method": str(method),
            "rpc.response.status_code": str(status_code),
            "tenant": str(tenant),
        }
        self._request_duration.record(seconds, attributes)

    def time_to_first_image(self, seconds: float, tenant: str, model: str, task_type: str) -> None:
        """Record the wait from request start until the first image went out."""
        attributes = {"tenant": str(tenant), "model": str(model), "task_type": str(task_type)}
        self._time_to_first_image.record(seconds, attributes)

    def backend_duration(self, seconds: float, model: str, outcome: BackendOutcome) -> None:
        """Record one backend call (one image) and how it ended."""
        self._backend_duration.record(seconds, {"model": str(model), "outcome": outcome})

    def policy_decision(self, rule: str, effect: str) -> None:
        """Count a policy rule firing with its effect (allow, deny, rewrite…)."""
        self._policy_decisions.add(1, {"rule": str(rule), "effect": str(effect)})

    def moderation_block(self, category: str) -> None:
        """Count a prompt blocked by moderation."""
        self._moderation_blocks.add(1, {"category": str(category)})

    def quota_refusal(self, quota: str) -> None:
        """Count a request refused by a quota (rate, concurrency, budget…)."""
        self._quota_refusals.add(1, {"quota": str(quota)})

    def backend_retry(self, model: str, reason: RetryReason) -> None:
        """Count one retried backend call."""
        self._backend_retries.add(1, {"model": str(model), "reason": reason})

    def backend_throttle(self, model: str) -> None:
        """Count one throttling response from the backend."""
        self._backend_throttles.add(1, {"model": str(model)})

    def observe_budgets(self, callback: BudgetCallback) -> None:
        """Feed the budget gauge from `callback`, which yields
        ``(tenant, period, remaining_micros)``.

        The callback runs on the metric collection thread at every export or
        scrape: it must be synchronous and cheap, reading a cache the caller
        keeps fresh, never the database. A later call replaces the callback.
        """
        self._budget_source.set(callback)


def _image_attributes(
    tenant: str, model: str, task_type: str, quality: str, size_class: str
) -> dict[str, str]:
    # str() turns StrEnum members into their plain values.
    return {
        "tenant": str(tenant),
        "model": str(model),
        "task_type": str(task_type),
        "quality": str(quality),
        "size_class": str(size_class),
    }
