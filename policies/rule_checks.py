"""Checks on the rules: one effect each, conditions that compile to a bool,
names, routes to priced models, rules that can never run, rules that fight."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from cel_expr_python import cel  # type: ignore[import-untyped, unused-ignore]
from yaml.nodes import Node, ScalarNode

from policies.checks import Sections, first_use
from policies.conditions import Condition, ConditionInvalid, compile_condition
from policies.problems import Finding, Loc, describe
from policies.schema import RuleSpec
from policies.yamltext import line_of, node_at

IndexedRules = Sequence[tuple[int, RuleSpec]]
EFFECTS = "deny, set, limit or route"


def check_rules(
    env: cel.Env, sections: Sections, root: Node | None
) -> tuple[dict[int, Condition], list[Finding]]:
    """Compiled conditions by rule index, and every problem with the rules."""
    conditions: dict[int, Condition] = {}
    found: list[Finding] = []
    for i, rule in sections.rules:
        found += _effects(i, rule, sections.priced_models)
        if rule.when is None:
            continue
        try:
            conditions[i] = compile_condition(env, rule.when)
        except ConditionInvalid as exc:
            found += _cel_findings(("rules", i, "when"), exc, root)
    found += first_use(((r.name, ("rules", i, "name")) for i, r in sections.rules), "rule name")
    found += _unreachable(sections.rules)
    found += _contradictions(sections.rules)
    return conditions, found


def _effects(i: int, rule: RuleSpec, priced: frozenset[str]) -> Iterator[Finding]:
    effects = rule.effects()
    if not effects:
        yield Finding(("rules", i), f"a rule needs exactly one effect ({EFFECTS}), it has none")
    elif len(effects) > 1:
        listed = f"{len(effects)}: {', '.join(effects)}"
        yield Finding(("rules", i), f"a rule needs exactly one effect ({EFFECTS}), it has {listed}")
    if rule.set_ is not None and not rule.set_.model_fields_set:
        reason = "set needs at least one of quality, count, width, height, cfg_scale"
        yield Finding(("rules", i, "set"), reason)
    if rule.limit is not None and not rule.limit.model_fields_set:
        reason = "limit needs at least one of max_images, max_width, max_height"
        yield Finding(("rules", i, "limit"), reason)
    if rule.route is not None and rule.route not in priced:
        reason = f"routes to model '{rule.route}', which has no price (add it under pricing)"
        yield Finding(("rules", i, "route"), reason)


def _cel_findings(loc: Loc, exc: ConditionInvalid, root: Node | None) -> list[Finding]:
    """CEL errors at their line: inside a ``|`` block, the line of the expression's line."""
    node, key_line = node_at(root, loc), line_of(root, loc)
    return [Finding(loc, i.reason, _cel_line(node, key_line, i.line)) for i in exc.issues]


def _cel_line(node: Node | None, key_line: int | None, line_in_expression: int) -> int | None:
    if isinstance(node, ScalarNode) and node.style == "|":
        return node.start_mark.line + 1 + line_in_expression  # the text starts below the `|`
    return key_line  # folded and flow scalars lose their line breaks: point at the key


def normalised(condition: str | None) -> str:
    """The condition without whitespace outside string literals; absent means ``true``."""
    if condition is None:
        return "true"
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for char in condition:
        if quote is None and char.isspace():
            continue
        out.append(char)
        if quote is not None and not escaped and char == quote:
            quote = None
        elif quote is None and char in "\"'":
            quote = char
        escaped = quote is not None and char == "\\" and not escaped
    return "".join(out)


def _always_denies(rule: RuleSpec) -> bool:
    enforced_deny = rule.mode == "enforce" and rule.effects() == ["deny"]
    return enforced_deny and normalised(rule.when) == "true"


def _unreachable(rules: IndexedRules) -> Iterator[Finding]:
    blocker = next(((i, r) for i, r in rules if _always_denies(r)), None)
    if blocker is None:
        return
    first, rule = blocker
    reason = f"unreachable: rule '{rule.name}' (rules[{first}]) before it denies every request"
    for i, _ in rules:
        if i > first:
            yield Finding(("rules", i), reason)


def _contradictions(rules: IndexedRules) -> Iterator[Finding]:
    earlier: list[tuple[int, RuleSpec, str]] = []
    for i, rule in rules:
        if rule.mode != "enforce" or len(rule.effects()) != 1:
            continue
        condition = normalised(rule.when)
        for j, other, other_condition in earlier:
            if condition == other_condition:
                yield from _conflicts(j, other, i, rule)
        earlier.append((i, rule, condition))


def _conflicts(j: int, first: RuleSpec, i: int, rule: RuleSpec) -> Iterator[Finding]:
    against = f"contradicts rule '{first.name}' (rules[{j}]): under the same condition"
    if first.route is not None and rule.route is not None and first.route != rule.route:
        both = f"that rule routes to '{first.route}' and this one to '{rule.route}'"
        yield Finding(("rules", i, "route"), f"{against} {both}")
    if first.set_ is None or rule.set_ is None:
        return
    theirs, ours = first.set_.model_dump(exclude_none=True), rule.set_.model_dump(exclude_none=True)
    for name in ours:
        if name in theirs and ours[name] != theirs[name]:
            both = f"that rule sets {name} to {describe(theirs[name])}"
            both += f" and this one to {describe(ours[name])}"
            yield Finding(("rules", i, "set", name), f"{against} {both}")
