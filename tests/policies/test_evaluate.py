"""The evaluation as a whole: rule order, shadow mode, failing closed,
moderation, pricing and the estimate."""

from __future__ import annotations

from typing import Any

import pytest

from policies import ModerationVerdict, Rewrite, ShadowResult, UsageFacts, evaluate
from tests.policies.support import NOVA, NOW, TITAN, TITAN_V1, facts, policy_with

STANDARD_FOR_FREE = (
    '- {name: std, when: \'tenant.tier == "free" && request.quality == "premium"\','
    " set: {quality: standard}}"
)


# --- rule order ------------------------------------------------------------------------------


def test_a_later_rule_sees_an_earlier_rewrite() -> None:
    policy = policy_with(
        STANDARD_FOR_FREE + "\n- {name: std-is-one, when: 'request.quality == \"standard\"',"
        " limit: {max_images: 1}}"
    )
    decision = evaluate(policy, facts(quality="premium", count=3), NOW)
    assert decision.matched == ("std", "std-is-one")
    assert decision.rewrites == (
        Rewrite("std", "quality", "premium", "standard"),
        Rewrite("std-is-one", "count", 3, 1),
    )


def test_a_rewrite_can_make_a_later_rule_miss() -> None:
    policy = policy_with(
        STANDARD_FOR_FREE + "\n- {name: premium-watch, when: 'request.quality == \"premium\"',"
        " deny: premium is watched}"
    )
    decision = evaluate(policy, facts(quality="premium"), NOW)
    assert decision.allowed
    assert decision.matched == ("std",)


def test_the_first_deny_wins_and_stops() -> None:
    policy = policy_with(
        """
        - {name: first, when: 'request.count > 1', deny: first says no}
        - {name: second, when: 'request.count > 1', deny: second says no}
        - {name: after, set: {quality: premium}}
        """
    )
    decision = evaluate(policy, facts(count=2), NOW)
    assert (decision.allowed, decision.denied_by, decision.message) == (
        False,
        "first",
        "first says no",
    )
    assert decision.matched == ("first",)
    assert decision.rewrites == ()


def test_conditions_see_tenant_request_and_usage() -> None:
    policy = policy_with(
        """
        - name: tired
          when: >
            tenant.id == "acme" && "beta" in tenant.labels && request.pixels == 1048576
            && usage.budget_used_fraction > 0.5 && usage.spent_today_usd >= 1.5
            && usage.images_today == 10 && request.prompt_length == 20
          deny: slow down
        """
    )
    usage = UsageFacts(budget_used_fraction=0.75, spent_today_micros=1_500_000, images_today=10)
    assert evaluate(policy, facts(usage=usage), NOW).denied_by == "tired"
    assert evaluate(policy, facts(), NOW).allowed


# --- shadow mode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "changes", "outcome"),
    [
        ("{name: s, mode: shadow, deny: big batch}", {}, "would deny: big batch"),
        (
            "{name: s, mode: shadow, set: {quality: standard}}",
            {"quality": "premium"},
            "would set quality: premium -> standard",
        ),
        (
            "{name: s, mode: shadow, limit: {max_images: 2}}",
            {"count": 4},
            "would set count: 4 -> 2",
        ),
        ("{name: s, mode: shadow, limit: {max_images: 2}}", {}, "would change nothing"),
        (
            f"{{name: s, mode: shadow, route: '{NOVA}'}}",
            {},
            f"would set model: {TITAN} -> {NOVA}",
        ),
        (
            "{name: s, mode: shadow, when: '1 / (request.count - request.count) > 0', deny: x}",
            {},
            "error: divide by zero",
        ),
    ],
    ids=["deny", "set", "limit", "no change", "route", "error"],
)
def test_a_shadow_rule_is_recorded_never_applied(
    rule: str, changes: dict[str, Any], outcome: str
) -> None:
    policy = policy_with(f"- {rule}")
    decision = evaluate(policy, facts(**changes), NOW)
    unchanged = facts(**changes).request
    assert decision.allowed
    assert decision.request == unchanged
    assert decision.rewrites == ()
    assert decision.matched == ()
    assert decision.shadow == (ShadowResult("s", rule.split(", ")[-1].split(":")[0], outcome),)


def test_a_shadow_rule_that_does_not_match_is_not_recorded() -> None:
    policy = policy_with("- {name: s, mode: shadow, when: 'request.count > 4', deny: x}")
    assert evaluate(policy, facts(count=2), NOW).shadow == ()


def test_a_shadow_rule_sees_earlier_enforced_rewrites_and_later_rules_ignore_it() -> None:
    policy = policy_with(
        STANDARD_FOR_FREE
        + "\n- {name: s, mode: shadow, when: 'request.quality == \"standard\"', set: {count: 1}}"
        + "\n- {name: after, when: 'request.count == 3', set: {cfg_scale: 5.0}}"
    )
    decision = evaluate(policy, facts(quality="premium", count=3), NOW)
    assert decision.shadow == (ShadowResult("s", "set", "would set count: 3 -> 1"),)
    assert decision.matched == ("std", "after")
    assert decision.request.count == 3


# --- failing closed --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "changes", "reason"),
    [
        ("1 / (request.count - request.count) > 0", {}, "divide by zero"),
        ('tenant.labels[3] == "x"', {}, "Index error: index=3 size=1"),
        ("request.width > 1", {"width": 2**70}, "int too big to convert"),
        ("request.count * 9223372036854775807 > 0", {"count": 2}, "integer overflow"),
    ],
    ids=["divide by zero", "index out of range", "int too big", "overflow"],
)
def test_an_enforced_rule_that_cannot_be_evaluated_denies(
    when: str, changes: dict[str, Any], reason: str
) -> None:
    policy = policy_with(f"- {{name: boom, when: '{when}', set: {{quality: standard}}}}")
    decision = evaluate(policy, facts(**changes), NOW)
    assert not decision.allowed
    assert decision.denied_by == "boom"
    assert decision.message == (
        f"rule 'boom' could not be evaluated ({reason}); denied to fail closed"
    )
    assert decision.matched == ()


# --- moderation ------------------------------------------------------------------------------

MODERATED = """
moderation:
  categories:
    - {name: violence, terms: [gore]}
    - {name: sexual, terms: [nsfw]}
"""


def test_a_blocked_prompt_is_denied_by_its_category_without_the_term() -> None:
    texts = {"text_to_image.text": "a castle", "text_to_image.negative_text": "no g0re please"}
    decision = evaluate(policy_with(extra=MODERATED), facts(texts=texts), NOW)
    assert not decision.allowed
    assert decision.denied_by == "moderation:violence"
    assert decision.moderation == ModerationVerdict(True, "violence", "text_to_image.negative_text")
    assert decision.message == (
        "the prompt in text_to_image.negative_text was blocked by moderation (category 'violence')"
    )
    assert "gore" not in decision.message
    assert "g0re" not in decision.message
    assert decision.estimate_micros == 0


def test_a_clean_prompt_passes_moderation() -> None:
    texts = {"text_to_image.text": "a lighthouse in a storm"}
    decision = evaluate(policy_with(extra=MODERATED), facts(texts=texts), NOW)
    assert decision.allowed
    assert decision.moderation == ModerationVerdict(blocked=False)


def test_moderation_runs_after_the_rules_and_not_after_a_deny() -> None:
    policy = policy_with("- {name: closed, deny: closed for today}", extra=MODERATED)
    decision = evaluate(policy, facts(texts={"text_to_image.text": "nsfw"}), NOW)
    assert decision.denied_by == "closed"
    assert decision.moderation == ModerationVerdict(blocked=False)


# --- pricing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "price"),
    [
        ({}, 10_000),
        ({"quality": "premium"}, 12_000),
        ({"width": 512, "height": 512}, 8_000),
        ({"width": 1408, "height": 768}, 10_000),
        ({"width": 1408, "height": 768, "quality": "premium"}, 12_000),
        ({"model": TITAN_V1}, 10_000),
        ({"model": NOVA}, 40_000),
        ({"model": NOVA, "quality": "premium"}, 60_000),
        ({"model": NOVA, "width": 2048, "height": 2048}, 60_000),
        ({"model": NOVA, "width": 4096, "height": 1024, "quality": "premium"}, 80_000),
    ],
    ids=[
        "titan 1024 standard",
        "titan 1024 premium",
        "titan 512",
        "titan large standard",
        "titan large premium",
        "titan v1",
        "nova 1024 standard",
        "nova 1024 premium",
        "nova 2048 standard",
        "nova 4 MP premium",
    ],
)
def test_default_prices(changes: dict[str, Any], price: int) -> None:
    decision = evaluate(policy_with(), facts(count=3, **changes), NOW)
    assert decision.allowed
    assert decision.price_per_image_micros == price
    assert decision.estimate_micros == 3 * price


def test_the_estimate_uses_the_clamped_count_and_rewritten_quality() -> None:
    policy = policy_with(
        STANDARD_FOR_FREE + "\n- {name: cap, limit: {max_images: 2, max_width: 1024}}"
    )
    decision = evaluate(policy, facts(model=NOVA, quality="premium", count=5, width=2048), NOW)
    assert (decision.request.count, decision.request.width) == (2, 1024)
    assert decision.price_per_image_micros == 40_000
    assert decision.estimate_micros == 80_000


def test_a_route_is_priced_at_the_new_model() -> None:
    policy = policy_with(f"- {{name: to-nova, route: '{NOVA}'}}")
    decision = evaluate(policy, facts(count=2), NOW)
    assert (decision.price_per_image_micros, decision.estimate_micros) == (40_000, 80_000)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "amazon.unknown-v9"}, "no price for model amazon.unknown-v9"),
        (
            {"model": NOVA, "width": 4096, "height": 2048},
            f"no price for model {NOVA} at 4096x2048 standard",
        ),
        ({"quality": "ultra"}, f"no price for model {TITAN} at 1024x1024 ultra"),
    ],
    ids=["unknown model", "beyond the largest size class", "unknown quality"],
)  # fmt: skip
def test_no_price_denies(changes: dict[str, Any], message: str) -> None:
    decision = evaluate(policy_with(), facts(**changes), NOW)
    assert (decision.allowed, decision.denied_by, decision.message) == (False, "pricing", message)
    assert decision.estimate_micros == 0


@pytest.mark.parametrize(
    ("size", "quality", "price"),
    [
        ((512, 512), "standard", 8_000),
        ((384, 704), "standard", 8_000),
        ((384, 704), "premium", 10_000),
        ((768, 768), "standard", 10_000),
        ((1024, 1024), "standard", 10_000),
        ((1024, 1024), "premium", 12_000),
        ((768, 1408), "standard", 10_000),
        ((1408, 1408), "premium", 12_000),
    ],
    ids=lambda v: f"{v[0]}x{v[1]}" if isinstance(v, tuple) else str(v),
)
def test_titan_bills_the_512_class_up_to_384x704_and_the_1024_class_above(
    size: tuple[int, int], quality: str, price: int
) -> None:
    # AWS: Titan Image Generator bills 512x512-class images (at most 270,336
    # pixels, 384x704) $0.008/$0.01 and larger ones up to 1408x1408 $0.01/$0.012.
    policy = policy_with()
    for model in (TITAN, TITAN_V1):
        assert policy.price_micros(model, *size, quality) == price
    assert policy.price_micros(TITAN, 1409, 1408, "standard") is None


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("stability.stable-image-ultra-v1:1", 140_000),
        ("stability.stable-image-core-v1:1", 40_000),
        ("stability.sd3-5-large-v1:0", 80_000),
        ("stability.stable-image-remove-background-v1:0", 70_000),
        ("stability.stable-image-erase-object-v1:0", 70_000),
        ("stability.stable-image-inpaint-v1:0", 70_000),
        ("stability.stable-image-search-replace-v1:0", 70_000),
        ("stability.stable-image-search-recolor-v1:0", 70_000),
        ("stability.stable-image-control-sketch-v1:0", 70_000),
        ("stability.stable-image-control-structure-v1:0", 70_000),
        ("stability.stable-image-style-guide-v1:0", 70_000),
        ("stability.stable-style-transfer-v1:0", 80_000),
        ("stability.stable-outpaint-v1:0", 60_000),
        ("stability.stable-fast-upscale-v1:0", 30_000),
        ("stability.stable-conservative-upscale-v1:0", 400_000),
        ("stability.stable-creative-upscale-v1:0", 600_000),
    ],
)
def test_stability_models_bill_a_flat_price_per_image(model: str, price: int) -> None:
    policy = policy_with()
    for width, height in ((512, 512), (1024, 1024), (1536, 1536), (4096, 4096)):
        for quality in ("standard", "premium"):
            assert policy.price_micros(model, width, height, quality) == price


def test_a_pricing_section_overrides_the_defaults_model_by_model() -> None:
    policy = policy_with(
        extra="""
        pricing:
          - model: amazon.titan-image-generator-v2:0
            sizes:
              - {max_pixels: 262144, standard_usd: 0.005, premium_usd: 0.007}
              - {max_pixels: 1048576, standard_usd: 0.009, premium_usd: 0.011}
        """
    )
    assert policy.price_micros(TITAN, 512, 512, "standard") == 5_000
    assert policy.price_micros(TITAN, 512, 513, "premium") == 11_000
    assert policy.price_micros(TITAN, 1408, 768, "standard") is None  # the file's classes only
    assert policy.price_micros(TITAN_V1, 1408, 768, "standard") == 10_000  # not listed: default
    assert policy.price_micros(NOVA, 1024, 1024, "standard") == 40_000


# --- out-of-range facts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count": 0}, "the request's count must be at least 1, got 0"),
        ({"width": -5}, "the request's width must be at least 1, got -5"),
        ({"height": 0}, "the request's height must be at least 1, got 0"),
    ],
    ids=["no images", "negative width", "zero height"],
)
def test_impossible_facts_are_denied_not_priced(changes: dict[str, Any], message: str) -> None:
    decision = evaluate(policy_with(), facts(**changes), NOW)
    assert (decision.allowed, decision.denied_by, decision.message) == (False, "request", message)
