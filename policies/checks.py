"""Checks across entries: duplicates, unknown tiers, budgets, prices, moderation.

They run on `Sections`: the entries of the file that passed schema validation
on their own, so one bad tenant does not hide a duplicate id among the others.
Rule checks (effects, CEL, reachability) are in `policies.rule_checks`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from policies.moderation import (
    ModerationCategory,
    ModerationConfig,
    ModerationConfigError,
    Moderator,
)
from policies.money import format_usd
from policies.problems import Finding, Loc, parse_path, render_path
from policies.schema import (
    BudgetSpec,
    CategorySpec,
    ModelPriceSpec,
    ModerationSpec,
    RuleSpec,
    TenantSpec,
    TierSpec,
)


@dataclass(frozen=True)
class Sections:
    """The valid entries of each section, with their index in the file.

    `tier_names` and `price_names` hold every name the file mentions, valid
    entry or not, so an invalid tier is not also reported as an unknown one.
    `priced_models` is `price_names` and the base price table's models.
    """

    admin_keys: tuple[tuple[int, str], ...]
    tiers: Mapping[str, TierSpec]
    tier_names: frozenset[str]
    tenants: tuple[tuple[int, TenantSpec], ...]
    pricing: tuple[tuple[int, ModelPriceSpec], ...] | None
    price_names: frozenset[str]
    priced_models: frozenset[str]
    rules: tuple[tuple[int, RuleSpec], ...]
    moderation: ModerationSpec | None


def check_entries(sections: Sections) -> list[Finding]:
    """Every cross-entry problem outside the rules."""
    return [
        *_duplicate_tenants(sections),
        *_unknown_tiers(sections),
        *_duplicate_key_hashes(sections),
        *_duplicate_client_certificates(sections),
        *_budgets(sections),
        *_pricing(sections),
        *_moderation(sections.moderation),
    ]


def first_use(
    pairs: Iterable[tuple[str, Loc]], what: str, *, show: bool = True
) -> Iterator[Finding]:
    """A finding for each value already seen at an earlier loc."""
    seen: dict[str, Loc] = {}
    for value, loc in pairs:
        if value not in seen:
            seen[value] = loc
            continue
        named = f"{what} '{value}'" if show else what
        yield Finding(loc, f"duplicate {named} (first used at {render_path(seen[value])})")


def _duplicate_tenants(sections: Sections) -> Iterator[Finding]:
    return first_use(((t.id, ("tenants", i, "id")) for i, t in sections.tenants), "tenant id")


def _unknown_tiers(sections: Sections) -> Iterator[Finding]:
    names = sorted(sections.tier_names)
    known = f"tiers defined: {', '.join(names)}" if names else "no tiers are defined"
    for i, tenant in sections.tenants:
        if tenant.tier not in sections.tier_names:
            yield Finding(("tenants", i, "tier"), f"unknown tier '{tenant.tier}' ({known})")


def _duplicate_key_hashes(sections: Sections) -> Iterator[Finding]:
    admin = ((h, ("admin_keys", i)) for i, h in sections.admin_keys)
    tenant = (
        (h, ("tenants", i, "api_keys", k))
        for i, t in sections.tenants
        for k, h in enumerate(t.api_keys)
    )
    return first_use([*admin, *tenant], "key hash", show=False)


def _duplicate_client_certificates(sections: Sections) -> Iterator[Finding]:
    # One certificate name, one tenant: else who a certificate is would depend on order.
    names = (
        (name, ("tenants", i, "client_certificates", k))
        for i, t in sections.tenants
        for k, name in enumerate(t.client_certificates)
    )
    return first_use(names, "client certificate identity")


def _budgets(sections: Sections) -> Iterator[Finding]:
    # Each entry's own caps only: a tenant's total cap below its tier's monthly
    # one is a fine way to bound a project, a tier with daily > monthly is a typo.
    for name, tier in sections.tiers.items():
        yield from _budget_order(tier.budget, ("tiers", name, "budget"))
    for i, tenant in sections.tenants:
        yield from _budget_order(tenant.budget, ("tenants", i, "budget"))


def _budget_order(budget: BudgetSpec, loc: Loc) -> Iterator[Finding]:
    caps = [("daily_usd", budget.daily_usd), ("monthly_usd", budget.monthly_usd)]
    caps.append(("total_usd", budget.total_usd))
    present = [(name, value) for name, value in caps if value is not None]
    for (small, low), (large, high) in itertools.pairwise(present):
        if low > high:
            shown = f"{small} ({format_usd(low)}) is more than {large} ({format_usd(high)})"
            yield Finding(loc, f"{shown}, so the {small} cap can never be reached")


def _pricing(sections: Sections) -> Iterator[Finding]:
    if sections.pricing is None:
        return
    if not sections.pricing and not sections.price_names:
        yield Finding(("pricing",), "lists no models; omit pricing to use the default prices")
    pairs = ((p.model, ("pricing", i, "model")) for i, p in sections.pricing)
    yield from first_use(pairs, "price entry for model")
    for i, price in sections.pricing:
        yield from _ascending(price, ("pricing", i, "sizes"))


def _ascending(price: ModelPriceSpec, loc: Loc) -> Iterator[Finding]:
    for k in range(1, len(price.sizes)):
        previous, current = price.sizes[k - 1].max_pixels, price.sizes[k].max_pixels
        if current <= previous:
            reason = f"size classes must ascend by max_pixels ({current} after {previous})"
            yield Finding((*loc, k, "max_pixels"), reason)


def _moderation(spec: ModerationSpec | None) -> Iterator[Finding]:
    if spec is None:
        return
    categories = list(enumerate(spec.categories))
    pairs = ((c.name, ("moderation", "categories", i, "name")) for i, c in categories)
    yield from first_use(pairs, "category name")
    for i, category in categories:
        if not category.terms and not category.patterns:
            yield Finding(("moderation", "categories", i), "a category needs terms or patterns")


def moderation_config(spec: ModerationSpec) -> ModerationConfig:
    return ModerationConfig(
        categories=tuple(_category(c) for c in spec.categories),
        allow=tuple(spec.allow),
        leetspeak=spec.leetspeak,
    )


def _category(spec: CategorySpec) -> ModerationCategory:
    return ModerationCategory(spec.name, tuple(spec.terms), tuple(spec.patterns))


def compile_moderator(spec: ModerationSpec | None) -> tuple[Moderator | None, list[Finding]]:
    """The compiled moderator, or the problems of every entry it cannot compile."""
    if spec is None:
        return None, []
    found = [f for loc, config in _lone_entries(spec) for f in _compile_problems(config, loc)]
    if found:
        return None, found
    try:
        return Moderator.compile(moderation_config(spec)), []
    except ModerationConfigError as exc:
        return None, [Finding(("moderation", *parse_path(exc.path)), exc.reason)]


def _lone_entries(spec: ModerationSpec) -> Iterator[tuple[Loc, ModerationConfig]]:
    """Each term, pattern and allow entry alone, so every bad one is reported, not the first."""
    leet = spec.leetspeak
    for i, c in enumerate(spec.categories):
        for k, term in enumerate(c.terms):
            lone = ModerationCategory(c.name, terms=(term,))
            yield ("moderation", "categories", i, "terms", k), ModerationConfig((lone,), (), leet)
        for k, pattern in enumerate(c.patterns):
            lone = ModerationCategory(c.name, patterns=(pattern,))
            loc = ("moderation", "categories", i, "patterns", k)
            yield loc, ModerationConfig((lone,), (), leet)
    for k, entry in enumerate(spec.allow):
        yield ("moderation", "allow", k), ModerationConfig((), (entry,), leet)


def _compile_problems(config: ModerationConfig, loc: Loc) -> list[Finding]:
    try:
        Moderator.compile(config)
    except ModerationConfigError as exc:
        return [Finding(loc, exc.reason)]
    return []
