"""Each effect on its own: deny, set, limit (with and without allowed sizes), route."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from policies import Rewrite, evaluate
from tests.policies.support import NOVA, NOW, TITAN, TITAN_SIZES, facts, policy_with


@dataclass(frozen=True)
class Case:
    rules: str
    request: dict[str, Any] = field(default_factory=dict)
    sizes: tuple[tuple[int, int], ...] | None = None
    allowed: bool = True
    message: str = "allowed"
    rewrites: tuple[tuple[str, object, object], ...] = ()


CAP = "- {name: cap, limit: {max_images: 2, max_width: 1024, max_height: 1024}}"
TITAN_CAP = "- {name: cap, limit: {max_width: 1024, max_height: 1024}}"
CASES = {
    "deny": Case(
        "- {name: no-bg, when: 'request.task == \"BACKGROUND_REMOVAL\"', deny: needs a paid plan}",
        {"task": "BACKGROUND_REMOVAL"},
        allowed=False,
        message="needs a paid plan",
    ),
    "deny not matching": Case(
        "- {name: no-bg, when: 'request.task == \"BACKGROUND_REMOVAL\"', deny: paid plan}",
    ),
    "set quality": Case(
        "- {name: std, when: 'request.quality == \"premium\"', set: {quality: standard}}",
        {"quality": "premium"},
        rewrites=(("quality", "premium", "standard"),),
    ),
    "set several fields": Case(
        "- {name: std, set: {quality: standard, count: 1, cfg_scale: 6.5}}",
        {"quality": "premium", "count": 3},
        rewrites=(("quality", "premium", "standard"), ("count", 3, 1), ("cfg_scale", 8.0, 6.5)),
    ),
    "set to the current value records nothing": Case(
        "- {name: std, set: {quality: standard}}",
    ),
    "set an allowed size": Case(
        "- {name: small, set: {width: 512, height: 512}}",
        sizes=TITAN_SIZES,
        rewrites=(("width", 1024, 512), ("height", 1024, 512)),
    ),
    "set a size the model does not offer": Case(
        "- {name: odd, set: {width: 900, height: 900}}",
        sizes=TITAN_SIZES,
        allowed=False,
        message=f"rule 'odd' sets the size to 900x900, which model {TITAN} does not offer",
    ),
    "set width and height is skipped for inpainting": Case(
        "- {name: small, set: {width: 512, height: 512, count: 1}}",
        {"task": "INPAINTING", "count": 2},
        rewrites=(("count", 2, 1),),
    ),
    "limit count": Case(CAP, {"count": 5}, rewrites=(("count", 5, 2),)),
    "limit within bounds changes nothing": Case(CAP, {"count": 2, "width": 768, "height": 768}),
    "limit free size keeps the ratio": Case(
        CAP,
        {"model": NOVA, "width": 2048, "height": 1024, "count": 4},
        rewrites=(("count", 4, 2), ("width", 2048, 1024), ("height", 1024, 512)),
    ),
    "limit free size rounds down to 16": Case(
        CAP,
        {"model": NOVA, "width": 1000, "height": 3000},
        rewrites=(("width", 1000, 336), ("height", 3000, 1024)),
    ),
    "limit free size, width only": Case(
        "- {name: narrow, limit: {max_width: 1000}}",
        {"model": NOVA, "width": 2000, "height": 1000},
        rewrites=(("width", 2000, 992), ("height", 1000, 496)),
    ),
    "limit fixed sizes picks the same ratio": Case(
        TITAN_CAP,
        {"width": 1408, "height": 768},
        sizes=TITAN_SIZES,
        rewrites=(("width", 1408, 704), ("height", 768, 384)),
    ),
    "limit fixed sizes, ties go to more pixels": Case(
        "- {name: cap, limit: {max_width: 800, max_height: 800}}",
        sizes=TITAN_SIZES,
        rewrites=(("width", 1024, 768), ("height", 1024, 768)),
    ),
    "limit fixed sizes, nearest ratio when none is equal": Case(
        "- {name: cap, limit: {max_height: 700}}",
        {"width": 768, "height": 1408},
        sizes=TITAN_SIZES,
        rewrites=(("width", 768, 384), ("height", 1408, 640)),
    ),
    "limit fixed sizes, none fits": Case(
        "- {name: tiny, limit: {max_width: 300}}",
        sizes=TITAN_SIZES,
        allowed=False,
        message=f"no size of model {TITAN} fits max width 300; 1024x1024 was requested",
    ),
    "limit on an oversized input image denies": Case(
        CAP,
        {"task": "OUTPAINTING", "width": 1408, "height": 1408, "count": 3},
        allowed=False,
        message="input image 1408x1408 is larger than this tier allows (max 1024x1024)",
    ),
    "limit on a fitting input image still caps the count": Case(
        CAP,
        {"task": "BACKGROUND_REMOVAL", "width": 1024, "height": 768, "count": 3},
        rewrites=(("count", 3, 2),),
    ),
    "limit height only on inpainting": Case(
        "- {name: short, limit: {max_height: 512}}",
        {"task": "INPAINTING"},
        allowed=False,
        message="input image 1024x1024 is larger than this tier allows (max height 512)",
    ),
    "limit on an oversized style-transfer input denies": Case(
        CAP,
        {"task": "STYLE_TRANSFER", "model": NOVA, "width": 2048, "height": 1024},
        allowed=False,
        message="input image 2048x1024 is larger than this tier allows (max 1024x1024)",
    ),
    "set width and height is skipped for an upscale": Case(
        "- {name: small, set: {width: 512, height: 512, quality: premium}}",
        {"task": "CREATIVE_UPSCALE", "model": NOVA},
        rewrites=(("quality", "standard", "premium"),),
    ),
    "deny a new task by name": Case(
        "- {name: no-tryon, when: 'request.task == \"VIRTUAL_TRY_ON\"', deny: not on this plan}",
        {"task": "VIRTUAL_TRY_ON", "model": NOVA},
        allowed=False,
        message="not on this plan",
    ),
    "route": Case(
        f"- {{name: to-nova, when: '\"beta\" in tenant.labels', route: '{NOVA}'}}",
        rewrites=(("model", TITAN, NOVA),),
    ),
    "route to the same model records nothing": Case(f"- {{name: stay, route: '{TITAN}'}}"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_effect(case: Case) -> None:
    decision = evaluate(policy_with(case.rules), facts(sizes=case.sizes, **case.request), NOW)
    assert (decision.allowed, decision.message) == (case.allowed, case.message)
    rule = decision.matched[0] if decision.matched else ""
    assert decision.rewrites == tuple(Rewrite(rule, *r) for r in case.rewrites)
    if case.allowed:
        for rewrite in decision.rewrites:
            assert getattr(decision.request, rewrite.field) == rewrite.new
    else:
        assert decision.denied_by == rule
        assert (decision.price_per_image_micros, decision.estimate_micros) == (0, 0)


def test_a_rule_without_when_always_matches() -> None:
    decision = evaluate(policy_with("- {name: one, set: {count: 1}}"), facts(count=4), NOW)
    assert decision.matched == ("one",)
    assert decision.request.count == 1
