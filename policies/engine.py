"""`evaluate`: one decision from a policy and the facts of one request. Pure.

Order: the rules in file order (an enforced rule rewrites the request for the
rules after it; a shadow rule is recorded against the request as it stands and
changes nothing); the first enforced deny, or an enforced rule whose condition
cannot be evaluated, stops there. Then moderation of the prompt texts, then the
price of the final request and of every fallback model the last enforced route
rule left it. Any of them can deny; a denial costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from policies.conditions import EvalError, activation, check
from policies.decision import Decision, Rewrite, ShadowResult
from policies.facts import Facts, RequestFacts
from policies.moderation import ModerationVerdict
from policies.policy import Policy
from policies.routing import RouteChoice
from policies.rules import Outcome, Rule, apply_rule

_NOT_CHECKED = ModerationVerdict(blocked=False)


@dataclass
class _Run:
    """The evaluation so far: local to one `evaluate` call, never shared."""

    request: RequestFacts
    rewrites: list[Rewrite] = field(default_factory=list)
    shadow: list[ShadowResult] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    denied_by: str | None = None
    message: str = ""
    route: RouteChoice | None = None
    _data: tuple[RequestFacts, dict[str, object]] | None = None

    def data(self, facts: Facts) -> dict[str, object]:
        """CEL variables for the request as rewritten so far, rebuilt only on change."""
        if self._data is None or self._data[0] is not self.request:
            self._data = (self.request, activation(facts, self.request))
        return self._data[1]

    def decide(
        self,
        moderation: ModerationVerdict = _NOT_CHECKED,
        prices: tuple[tuple[str, int], ...] = (),
    ) -> Decision:
        """The decision; `prices` (chosen model first, then its fallbacks) when allowed."""
        route = self.route or RouteChoice(self.request.model)
        dearest = max((p for _, p in prices), default=0)
        return Decision(
            allowed=self.denied_by is None,
            request=self.request,
            rewrites=tuple(self.rewrites),
            shadow=tuple(self.shadow),
            matched=tuple(self.matched),
            denied_by=self.denied_by,
            message=self.message or "allowed",
            moderation=moderation,
            price_per_image_micros=prices[0][1] if prices else 0,
            estimate_micros=dearest * self.request.count,
            route_arm=route.arm,
            fallbacks=route.fallbacks,
            model_prices=prices,
            route_split=route.split,
        )

    def deny(self, by: str, message: str) -> None:
        self.denied_by, self.message = by, message


def evaluate(policy: Policy, facts: Facts, now: datetime) -> Decision:
    """Decide on `facts` at `now` (given, never read from a clock). Never raises."""
    del now  # no rule depends on the time yet; the parameter keeps the seam stable
    run = _Run(facts.request)
    problem = _out_of_range(facts.request)
    if problem:
        run.deny("request", problem)
        return run.decide()
    for rule in policy.rules:
        _step(run, rule, facts)
        if run.denied_by is not None:
            return run.decide()
    verdict = policy.moderator.check(facts.texts)
    if verdict.blocked:
        run.deny(f"moderation:{verdict.category}", _blocked_message(verdict))
        return run.decide(verdict)
    return _priced(run, policy, verdict)


def _out_of_range(request: RequestFacts) -> str:
    """Facts no valid request has; the gateway validates first, so this is a backstop."""
    for name in ("width", "height", "count"):
        value = getattr(request, name)
        if value < 1:
            return f"the request's {name} must be at least 1, got {value}"
    return ""


def _step(run: _Run, rule: Rule, facts: Facts) -> None:
    """Apply one rule to the run (or record it, for a shadow rule)."""
    hit = True if rule.condition is None else check(rule.condition, run.data(facts))
    if isinstance(hit, EvalError):
        _failed(run, rule, hit)
    elif hit:
        outcome = apply_rule(rule, run.request, facts.size_options, facts.tenant.id)
        if rule.shadow:
            run.shadow.append(ShadowResult(rule.name, rule.effect.kind, _would(outcome)))
        else:
            _enforce(run, rule, outcome)


def _failed(run: _Run, rule: Rule, error: EvalError) -> None:
    if rule.shadow:
        run.shadow.append(ShadowResult(rule.name, rule.effect.kind, f"error: {error.reason}"))
        return
    reason = f"rule '{rule.name}' could not be evaluated ({error.reason}); denied to fail closed"
    run.deny(rule.name, reason)


def _enforce(run: _Run, rule: Rule, outcome: Outcome) -> None:
    run.matched.append(rule.name)
    if outcome.denial is not None:
        run.deny(rule.name, outcome.denial)
        return
    run.request = outcome.request
    run.rewrites.extend(outcome.rewrites)
    if outcome.route is not None:  # the last route rule's arm and fallbacks stand
        run.route = outcome.route


def _would(outcome: Outcome) -> str:
    """What a shadow rule would have done, for people."""
    if outcome.denial is not None:
        return f"would deny: {outcome.denial}"
    if not outcome.rewrites:
        would = "would change nothing"
    else:
        would = "would set " + ", ".join(f"{r.field}: {r.old} -> {r.new}" for r in outcome.rewrites)
    route = outcome.route
    if route is not None and route.split is not None:
        would += f"; arm {route.arm} ({'treatment' if route.split.treatment else 'control'})"
    if route is not None and route.fallbacks:
        would += f"; fallback {', '.join(route.fallbacks)}"
    return would


def _blocked_message(verdict: ModerationVerdict) -> str:
    # Names the category and the field, never the matched term.
    where = f" in {verdict.field}" if verdict.field else ""
    return f"the prompt{where} was blocked by moderation (category '{verdict.category}')"


def _priced(run: _Run, policy: Policy, verdict: ModerationVerdict) -> Decision:
    """Price the chosen model and each fallback at the request's size and quality."""
    request = run.request
    fallbacks = run.route.fallbacks if run.route is not None else ()
    prices: list[tuple[str, int]] = []
    for model in (request.model, *fallbacks):
        price = policy.price_micros(model, request.width, request.height, request.quality)
        if price is None:
            run.deny("pricing", _no_price(policy, model, request, fallback=bool(prices)))
            return run.decide(verdict)
        prices.append((model, price))
    return run.decide(verdict, tuple(prices))


def _no_price(policy: Policy, model: str, request: RequestFacts, *, fallback: bool) -> str:
    what = f"fallback model {model}" if fallback else f"model {model}"
    if model in policy.pricing:
        return f"no price for {what} at {request.width}x{request.height} {request.quality}"
    return f"no price for {what}"
