"""`explain`: the report names the outcome, each rule and what it did, and the price."""

from __future__ import annotations

from policies import evaluate, explain
from tests.policies.support import NOVA, NOW, facts, policy_with

RULES = f"""
- {{name: std, when: 'request.quality == "premium"', set: {{quality: standard}}}}
- {{name: cap, limit: {{max_images: 2}}}}
- {{name: to-nova, route: '{NOVA}'}}
- {{name: watch, mode: shadow, when: 'request.count > 1', deny: big batch}}
- {{name: wordy, when: 'request.prompt_length > 1000', deny: prompt too long}}
"""
MODERATION = "moderation:\n  categories: [{name: violence, terms: [gore]}]\n"


def test_an_allowed_decision_is_explained_line_by_line() -> None:
    decision = evaluate(policy_with(RULES), facts(quality="premium", count=4), NOW)
    assert explain(decision) == "\n".join(
        [
            "ALLOWED",
            f"request: TEXT_IMAGE on {NOVA}, 2 images of 1024x1024, standard",
            "rules matched:",
            "  std: set quality premium -> standard",
            "  cap: set count 4 -> 2",
            f"  to-nova: routed amazon.titan-image-generator-v2:0 -> {NOVA}",
            "shadow rules (recorded, not applied):",
            "  watch (deny): would deny: big batch",
            "moderation: passed",
            "price: $0.04 per image x 2 = $0.08",
        ]
    )


def test_a_denied_decision_names_the_rule_and_charges_nothing() -> None:
    decision = evaluate(policy_with(RULES), facts(count=12, prompt_length=2000), NOW)
    report = explain(decision)
    assert report.startswith("DENIED by wordy: prompt too long\n")
    assert "  cap: set count 12 -> 2\n" in report
    assert "  wordy: denied the request\n" in report
    assert "moderation: not checked (denied before moderation)" in report
    assert report.endswith("price: nothing is charged (denied)")


def test_a_matched_rule_that_changed_nothing_says_so() -> None:
    decision = evaluate(policy_with(RULES), facts(count=1, model=NOVA), NOW)
    assert "  cap: matched, no change needed" in explain(decision)
    assert "  to-nova: matched, no change needed" in explain(decision)


def test_a_moderation_block_is_explained_without_the_term() -> None:
    texts = {"text_to_image.text": "lots of gore"}
    decision = evaluate(policy_with(extra=MODERATION), facts(texts=texts), NOW)
    report = explain(decision)
    assert "moderation: blocked (category 'violence' in text_to_image.text)" in report
    assert "gore" not in report
