"""`explain`: a decision as a short report for people (the CLI's `policy explain`)."""

from __future__ import annotations

from policies.decision import Decision, Rewrite
from policies.money import format_usd
from policies.routing import percent


def explain(decision: Decision) -> str:
    """Outcome, each matched rule and what it did, shadow rules, routing, moderation, price."""
    lines = [_headline(decision), f"request: {_request(decision)}", "rules matched:"]
    lines += [f"  {name}: {_did(decision, name)}" for name in decision.matched] or ["  (none)"]
    if decision.shadow:
        lines.append("shadow rules (recorded, not applied):")
        lines += [f"  {s.rule} ({s.effect}): {s.outcome}" for s in decision.shadow]
    lines += _routing(decision)
    lines.append(f"moderation: {_moderation(decision)}")
    lines.append(f"price: {_price(decision)}")
    return "\n".join(lines)


def _headline(decision: Decision) -> str:
    if decision.allowed:
        return "ALLOWED"
    return f"DENIED by {decision.denied_by}: {decision.message}"


def _request(decision: Decision) -> str:
    r = decision.request
    images = "image" if r.count == 1 else "images"
    return f"{r.task} on {r.model}, {r.count} {images} of {r.width}x{r.height}, {r.quality}"


def _did(decision: Decision, rule: str) -> str:
    changes = [_change(r) for r in decision.rewrites if r.rule == rule]
    if decision.denied_by == rule:
        changes.append("denied the request")
    return "; ".join(changes) or "matched, no change needed"


def _change(rewrite: Rewrite) -> str:
    if rewrite.field == "model":
        return f"routed {rewrite.old} -> {rewrite.new}"
    return f"set {rewrite.field} {rewrite.old} -> {rewrite.new}"


def _routing(decision: Decision) -> list[str]:
    """The A/B split the request went through, and its fallback chain with prices."""
    lines = []
    split = decision.route_split
    if split is not None:
        sticky = f"sticky by {split.sticky}"
        if split.keyed_by != split.sticky:
            sticky += f"; no {split.sticky} key, so by {split.keyed_by}"
        arm = "treatment" if split.treatment else "control"
        lines.append(
            f"route: {split.rule} split {percent(split.share)} -> {split.model}"
            f" ({sticky}), this request: {arm}"
        )
    prices = dict(decision.model_prices)
    for model in decision.fallbacks:
        price = f" ({format_usd(prices[model])})" if model in prices else ""
        lines.append(f"fallback: {model}{price}")
    return lines


def _moderation(decision: Decision) -> str:
    verdict = decision.moderation
    if verdict.blocked:
        return f"blocked (category '{verdict.category}' in {verdict.field})"
    by = decision.denied_by
    checked = by is None or by == "pricing"
    return "passed" if checked else "not checked (denied before moderation)"


def _price(decision: Decision) -> str:
    if not decision.allowed:
        return "nothing is charged (denied)"
    count = decision.request.count
    each = format_usd(decision.price_per_image_micros)
    charged = f"{each} per image x {count} = {format_usd(decision.price_per_image_micros * count)}"
    if decision.estimate_micros == decision.price_per_image_micros * count:
        return charged
    dearest = format_usd(max(price for _, price in decision.model_prices))
    reserved = format_usd(decision.estimate_micros)
    return f"{charged}; {reserved} reserved (a fallback may cost up to {dearest} per image)"
