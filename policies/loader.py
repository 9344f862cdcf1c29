"""`load_policy`: text in, a checked `Policy` out, or a `PolicyError` listing every problem.

The stages, each reporting as much as it can:

1. YAML: a syntax error stops here (nothing else can be read); duplicate
   keys are reported and loading goes on.
2. Schema: the whole document against `PolicyDocument` (pydantic).
3. Cross-entry checks on every entry that is valid on its own: duplicates,
   unknown tiers, budgets, prices, moderation entries, and the rules (one
   effect, CEL compiled and typed, reachability, contradictions).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from policies.build import build_policy
from policies.checks import Sections, check_entries, compile_moderator
from policies.conditions import new_environment
from policies.policy import Policy
from policies.pricing import PriceTable, default_price_table
from policies.problems import Finding, PolicyError, PolicyProblem, describe, render_path
from policies.rule_checks import check_rules
from policies.schema import (
    KeyHash,
    ModelPriceSpec,
    ModerationSpec,
    PolicyDocument,
    RuleSpec,
    TenantSpec,
    TierSpec,
)
from policies.schema_errors import findings as schema_findings
from policies.yamltext import Parsed, duplicate_keys, parse, position_of


def load_policy(
    text: str, source: str = "policy.yaml", default_prices: PriceTable | None = None
) -> Policy:
    """Parse, validate and compile a policy file; raise PolicyError with every problem.

    `default_prices` is the base price table (None: `DEFAULT_PRICES`); each
    model the file's `pricing` lists replaces that model's base entry, and
    every other model keeps its base price.
    """
    base = default_prices if default_prices is not None else default_price_table()
    parsed = parse(text, source)
    found = duplicate_keys(parsed.root)
    if not isinstance(parsed.data, dict):
        raise PolicyError(_problems(parsed, source, [*found, _not_a_mapping(parsed.data)]))
    document: PolicyDocument | None = None
    try:
        document = PolicyDocument.model_validate(parsed.data)
    except ValidationError as exc:
        found += schema_findings(exc, PolicyDocument)
    sections = _sections(parsed.data, base)
    conditions, rule_findings = check_rules(new_environment(), sections, parsed.root)
    moderator, moderation_findings = compile_moderator(sections.moderation)
    found += check_entries(sections) + rule_findings + moderation_findings
    if found or document is None or moderator is None:
        raise PolicyError(_problems(parsed, source, found))
    return build_policy(document, conditions, moderator, text, base)


def _not_a_mapping(data: object) -> Finding:
    if data is None:
        return Finding((), "the policy is empty; it needs at least 'version: 1'")
    return Finding((), f"the policy must be a mapping of keys, got {describe(data)}")


def _problems(parsed: Parsed, source: str, found: list[Finding]) -> list[PolicyProblem]:
    """Findings as problems with lines, in file order, without repeats."""
    placed: dict[PolicyProblem, tuple[int, int]] = {}
    for finding in found:
        line, column = _position(parsed, finding)
        problem = PolicyProblem(source, render_path(finding.loc), finding.reason, line or None)
        placed.setdefault(problem, (line, column))
    return sorted(placed, key=lambda p: (*placed[p], p.path))


def _position(parsed: Parsed, finding: Finding) -> tuple[int, int]:
    line, column = position_of(parsed.root, finding.loc) or (0, 0)
    if finding.line is not None and finding.line != line:
        return finding.line, 0
    return line, column


def _sections(data: dict[Any, Any], base: PriceTable) -> Sections:
    """Each section's entries that are valid on their own (errors are reported elsewhere)."""
    tiers = data.get("tiers")
    tiers = tiers if isinstance(tiers, dict) else {}
    pricing = data.get("pricing")
    listed = _names(pricing, "model")
    return Sections(
        admin_keys=_valid_items(data.get("admin_keys"), TypeAdapter(KeyHash)),
        tiers=_valid_values(tiers, TierSpec),
        tier_names=frozenset(k for k in tiers if isinstance(k, str)),
        tenants=_valid_items(data.get("tenants"), TypeAdapter(TenantSpec)),
        pricing=_valid_items(pricing, TypeAdapter(ModelPriceSpec)) if pricing is not None else None,
        price_names=frozenset(listed),
        priced_models=frozenset(listed | set(base.models)),
        rules=_valid_items(data.get("rules"), TypeAdapter(RuleSpec)),
        moderation=_valid(data.get("moderation", {}), ModerationSpec),
    )


def _valid_items(items: object, adapter: TypeAdapter[Any]) -> tuple[tuple[int, Any], ...]:
    if not isinstance(items, list):
        return ()
    valid = []
    for i, item in enumerate(items):
        try:
            valid.append((i, adapter.validate_python(item)))
        except ValidationError:
            continue
    return tuple(valid)


def _valid_values(mapping: dict[Any, Any], model: type[M]) -> dict[str, M]:
    valid = {k: _valid(v, model) for k, v in mapping.items() if isinstance(k, str)}
    return {k: v for k, v in valid.items() if v is not None}


M = TypeVar("M", bound=BaseModel)


def _valid(value: object, model: type[M]) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _names(items: object, key: str) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {i[key] for i in items if isinstance(i, dict) and isinstance(i.get(key), str)}
