"""Checks on the rules: one effect each, conditions that compile to a bool,
names, routes (split and fallback included) to priced models, rules that can
never run, rules that fight."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from cel_expr_python import cel  # type: ignore[import-untyped, unused-ignore]
from yaml.nodes import Node, ScalarNode

from policies.checks import Sections, first_use
from policies.conditions import Condition, ConditionInvalid, compile_condition
from policies.problems import Finding, Loc, describe
from policies.routing import percent
from policies.schema import RouteSpec, RuleSpec
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
    if rule.route is not None:
        yield from _route(("rules", i, "route"), rule.route, priced)


def _route(loc: Loc, route: RouteSpec, priced: frozenset[str]) -> Iterator[Finding]:
    """A route's models: each priced, the fallback chain without repeats, a split that splits."""
    if route.short_form:  # `route: <model id>`: the problem is at the key itself
        yield from _unpriced(loc, "routes to", route.model, priced)
        return
    if route.model is None and route.split is None and not route.fallback:
        yield Finding(loc, "route needs at least one of model, split, fallback")
    yield from _unpriced((*loc, "model"), "routes to", route.model, priced)
    if route.split is not None:
        split = (*loc, "split", "model")
        if route.split.model == route.model:
            reason = f"split.model is the same as model ('{route.model}'): both arms would use it"
            yield Finding(split, reason)
        yield from _unpriced(split, "splits to", route.split.model, priced)
    chain = [(model, (*loc, "fallback", k)) for k, model in enumerate(route.fallback)]
    for model, at in chain:
        yield from _unpriced(at, "falls back to", model, priced)
    yield from first_use(chain, "fallback model")


def _unpriced(loc: Loc, verb: str, model: str | None, priced: frozenset[str]) -> Iterator[Finding]:
    if model is not None and model not in priced:
        yield Finding(loc, f"{verb} model '{model}', which has no price (add it under pricing)")


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
    routed, rerouted = first.route, rule.route
    if routed is not None and rerouted is not None and _effective(routed) != _effective(rerouted):
        both = f"that rule routes to {_shown(routed)} and this one to {_shown(rerouted)}"
        yield Finding(("rules", i, "route"), f"{against} {both}")
    if first.set_ is None or rule.set_ is None:
        return
    theirs, ours = first.set_.model_dump(exclude_none=True), rule.set_.model_dump(exclude_none=True)
    for name in ours:
        if name in theirs and ours[name] != theirs[name]:
            both = f"that rule sets {name} to {describe(theirs[name])}"
            both += f" and this one to {describe(ours[name])}"
            yield Finding(("rules", i, "set", name), f"{against} {both}")


def _effective(route: RouteSpec) -> tuple[object, ...]:
    """What a route does, however it is written (`route: m` is `route: {model: m}`)."""
    split = route.split
    arms = (split.model, split.share, split.sticky) if split is not None else None
    return route.model, arms, tuple(route.fallback)


def _shown(route: RouteSpec) -> str:
    """``'m'``, or ``'m' (30% to 'u' by tenant; fallback 'c')`` for the mapping form."""
    shown = f"'{route.model}'" if route.model is not None else "the request's model"
    extras = []
    if route.split is not None:
        split = route.split
        extras.append(f"{percent(split.share)} to '{split.model}' by {split.sticky}")
    if route.fallback:
        extras.append("fallback " + ", ".join(f"'{m}'" for m in route.fallback))
    return f"{shown} ({'; '.join(extras)})" if extras else shown
