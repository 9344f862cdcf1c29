"""From a validated document to the runtime `Policy`: merged tenants, key rings,
compiled rules, the price table and the moderator."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType

from policies.conditions import Condition
from policies.moderation import Moderator
from policies.policy import GuardrailRef, Policy
from policies.pricing import ModelPrice, PriceTable, SizeClass
from policies.rules import Deny, Effect, Limit, Route, Rule, SetFields, Split
from policies.schema import (
    BudgetSpec,
    ModelPriceSpec,
    ModerationSpec,
    PolicyDocument,
    QuotasSpec,
    RouteSpec,
    RuleSpec,
    SizeClassSpec,
    TenantSpec,
    TierSpec,
    merged,
)
from policies.tenants import Budget, KeyRing, Quotas, Tenant


def build_policy(
    document: PolicyDocument,
    conditions: Mapping[int, Condition],
    moderator: Moderator,
    text: str,
    base_prices: PriceTable,
) -> Policy:
    """The policy `document` describes, with its rules' compiled `when`s and its moderator;
    its `pricing` entries override `base_prices` model by model."""
    tenants = {t.id: _tenant(t, document.tiers[t.tier]) for t in document.tenants}
    moderation = document.moderation
    return Policy(
        tenants=MappingProxyType(tenants),
        rules=tuple(_rule(r, conditions.get(i)) for i, r in enumerate(document.rules)),
        pricing=base_prices.overridden(_price(s) for s in document.pricing or ()),
        moderator=moderator,
        guardrail=_guardrail(moderation),
        digest=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        tenant_keys=KeyRing.of([(h, t.id) for t in document.tenants for h in t.api_keys]),
        admin_keys=KeyRing.of([(h, "admin") for h in document.admin_keys]),
        client_certificates=MappingProxyType(
            {name: t.id for t in document.tenants for name in t.client_certificates}
        ),
    )


def _tenant(spec: TenantSpec, tier: TierSpec) -> Tenant:
    return Tenant(
        id=spec.id,
        tier=spec.tier,
        labels=tuple(spec.labels),
        quotas=_quotas(merged(tier.quotas, spec.quotas)),
        budget=_budget(merged(tier.budget, spec.budget)),
        provenance=spec.provenance or tier.provenance or "required",
    )


def _quotas(spec: QuotasSpec) -> Quotas:
    return Quotas(**spec.model_dump())


def _budget(spec: BudgetSpec) -> Budget:
    return Budget(
        daily_micros=spec.daily_usd,
        monthly_micros=spec.monthly_usd,
        total_micros=spec.total_usd,
        alert_thresholds=tuple(sorted(set(spec.alert_thresholds))),
    )


def _rule(spec: RuleSpec, condition: Condition | None) -> Rule:
    return Rule(
        name=spec.name,
        effect=_effect(spec),
        condition=condition,
        shadow=spec.mode == "shadow",
        description=spec.description,
    )


def _effect(spec: RuleSpec) -> Effect:
    if spec.deny is not None:
        return Deny(spec.deny)
    if spec.set_ is not None:
        return SetFields(tuple(spec.set_.model_dump(exclude_none=True).items()))
    if spec.limit is not None:
        return Limit(**spec.limit.model_dump())
    if spec.route is not None:
        return _route(spec.route)
    raise AssertionError(f"rule {spec.name} has no effect; checks should have caught it")


def _route(spec: RouteSpec) -> Route:
    split = spec.split
    return Route(
        model=spec.model,
        split=Split(split.model, split.share, split.sticky) if split is not None else None,
        fallback=tuple(spec.fallback),
    )


def _price(spec: ModelPriceSpec) -> ModelPrice:
    return ModelPrice(spec.model, tuple(_size(c) for c in spec.sizes))


def _size(spec: SizeClassSpec) -> SizeClass:
    return SizeClass(spec.max_pixels, spec.standard_usd, spec.premium_usd)


def _guardrail(spec: ModerationSpec) -> GuardrailRef | None:
    if spec.guardrail is None:
        return None
    return GuardrailRef(id=spec.guardrail.id, version=spec.guardrail.version)
