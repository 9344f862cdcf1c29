"""Loading policy files: every shipped example loads; every broken file fails
with exactly the message(s) a person needs, at the right line."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import PolicyError, PolicyProblem, load_policy
from tests.policies.support import BROKEN, EXAMPLES

BROKEN_FILES = {
    "unknown-key.yaml": [
        "unknown-key.yaml:tenants[0].quota: unknown key 'quota'; did you mean 'quotas'? (line 8)"
    ],
    "wrong-type.yaml": [
        "wrong-type.yaml:tiers.free.quotas.images_per_day: expected an integer, got '500' (line 6)"
    ],
    "duplicate-tenant-id.yaml": [
        "duplicate-tenant-id.yaml:tenants[2].id: duplicate tenant id 'acme'"
        " (first used at tenants[0].id) (line 9)"
    ],
    "duplicate-rule-name.yaml": [
        "duplicate-rule-name.yaml:rules[1].name: duplicate rule name 'cap'"
        " (first used at rules[0].name) (line 5)"
    ],
    "unknown-tier.yaml": [
        "unknown-tier.yaml:tenants[0].tier: unknown tier 'enterprise'"
        " (tiers defined: free, pro) (line 7)"
    ],
    "bad-cel-syntax.yaml": [
        "bad-cel-syntax.yaml:rules[0].when: CEL syntax error at column 16: mismatched input"
        " '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT,"
        " NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER} (line 4)"
    ],
    "undeclared-cel-name.yaml": [
        "undeclared-cel-name.yaml:rules[2].when: undeclared reference to 'request.widht' (line 14)"
    ],
    "cel-type-error.yaml": [
        "cel-type-error.yaml:rules[0].when: found no matching overload for '_>_'"
        " applied to '(double, int)' (line 4)"
    ],
    "non-bool-condition.yaml": [
        "non-bool-condition.yaml:rules[0].when: the condition must be a bool,"
        " but it is int (line 4)"
    ],
    "unreachable-rule.yaml": [
        "unreachable-rule.yaml:rules[1]: unreachable: rule 'maintenance' (rules[0])"
        " before it denies every request (line 5)"
    ],
    "contradictory-rules.yaml": [
        "contradictory-rules.yaml:rules[1].set.quality: contradicts rule 'free-standard'"
        " (rules[0]): under the same condition that rule sets quality to 'standard'"
        " and this one to 'premium' (line 8)"
    ],
    "two-effects.yaml": [
        "two-effects.yaml:rules[0]: a rule needs exactly one effect (deny, set, limit or route),"
        " it has 2: deny, route (line 3)"
    ],
    "bad-hash-format.yaml": [
        "bad-hash-format.yaml:tenants[0].api_keys[1]: expected 'sha256:' and 64 lowercase hex"
        " digits (the key's hash, not the key) (line 10)"
    ],
    "bad-money-value.yaml": [
        "bad-money-value.yaml:tiers.free.budget.daily_usd: 0.0000005 USD is finer than one"
        " micro-USD (at most 6 decimal places) (line 4)"
    ],
    "bad-regex.yaml": [
        "bad-regex.yaml:moderation.categories[0].patterns[1]: invalid regular expression:"
        " missing ), unterminated subpattern at position 0 (line 6)"
    ],
    "yaml-syntax-error.yaml": [
        "yaml-syntax-error.yaml: invalid YAML: expected ',' or '}', but got ':'"
        " (while parsing a flow mapping that starts on line 4) (line 5)"
    ],
    "duplicate-key-hash.yaml": [
        "duplicate-key-hash.yaml:tenants[0].api_keys[1]: duplicate key hash"
        " (first used at admin_keys[0]) (line 8)"
    ],
    "duplicate-client-certificate.yaml": [
        "duplicate-client-certificate.yaml:tenants[1].client_certificates[0]: duplicate client"
        " certificate identity 'DNS:render.acme.example'"
        " (first used at tenants[0].client_certificates[1]) (line 10)"
    ],
    "bad-limit.yaml": [
        "bad-limit.yaml:rules[0].limit.max_images: must be at least 1, got 0 (line 4)",
        "bad-limit.yaml:rules[0].limit.max_width: must be at least 16, got 8 (line 4)",
    ],
    "pricing-gap.yaml": [
        "pricing-gap.yaml:pricing[0].sizes[0]: missing required key 'premium_usd':"
        " every size class needs a price for both qualities (line 5)"
    ],
    "duplicate-yaml-key.yaml": [
        "duplicate-yaml-key.yaml:rules[0].when: duplicate key 'when'"
        " (first on line 4; YAML keeps the last) (line 5)"
    ],
    "cel-error-in-block.yaml": [
        "cel-error-in-block.yaml:rules[0].when: undeclared reference to 'request.cont' (line 7)"
    ],
    "fallback-without-price.yaml": [
        "fallback-without-price.yaml:rules[0].route.fallback[1]: falls back to model"
        " 'stability.stable-diffusion-xl-v1', which has no price (add it under pricing) (line 9)"
    ],
    "split-share-out-of-range.yaml": [
        "split-share-out-of-range.yaml:rules[0].route.split.share: a share is a fraction more"
        " than 0 and less than 1 (0.3 sends 30%), got 30 (line 8)"
    ],
    "route-without-price.yaml": [
        "route-without-price.yaml:rules[0].route: routes to model"
        " 'stability.stable-diffusion-xl-v1', which has no price (add it under pricing) (line 4)"
    ],
    "many-problems.yaml": [
        "many-problems.yaml:version: unsupported policy version 2;"
        " this gateway reads version 1 (line 2)",
        "many-problems.yaml:tiers.free.budget: daily_usd ($10.00) is more than monthly_usd"
        " ($5.00), so the daily_usd cap can never be reached (line 5)",
        "many-problems.yaml:tenants[0].id: tenant id 'Acme' is not valid: use lowercase"
        " letters, digits, '_' and '-' (at most 63, first a letter or digit) (line 7)",
        "many-problems.yaml:tenants[1].tier: unknown tier 'gold' (tiers defined: free) (line 10)",
        "many-problems.yaml:rules[0].when: found no matching overload for '_>_'"
        " applied to '(int, double)' (line 13)",
        "many-problems.yaml:rules[0].limit: limit needs at least one of max_images,"
        " max_width, max_height (line 14)",
        "many-problems.yaml:rules[1].name: duplicate rule name 'cap'"
        " (first used at rules[0].name) (line 15)",
        "many-problems.yaml:rules[1].set: set needs at least one of quality, count, width,"
        " height, cfg_scale (line 16)",
    ],
}


def test_every_broken_file_has_an_expected_message() -> None:
    assert sorted(BROKEN_FILES) == sorted(p.name for p in BROKEN.glob("*.yaml"))


@pytest.mark.parametrize(("name", "expected"), BROKEN_FILES.items(), ids=list(BROKEN_FILES))
def test_a_broken_file_fails_with_exact_messages(name: str, expected: list[str]) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy((BROKEN / name).read_text(encoding="utf-8"), source=name)
    assert str(caught.value).splitlines() == expected
    assert [str(p) for p in caught.value.problems] == expected


def test_a_raw_key_in_api_keys_is_never_echoed() -> None:
    text = (BROKEN / "bad-hash-format.yaml").read_text(encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(text)
    assert "tgw_secret_raw_key" not in str(caught.value)


def test_a_problem_carries_its_parts() -> None:
    text = (BROKEN / "undeclared-cel-name.yaml").read_text(encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(text)
    assert caught.value.problems == (
        PolicyProblem(
            "policy.yaml", "rules[2].when", "undeclared reference to 'request.widht'", 14
        ),
    )


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_example_loads(path: Path) -> None:
    policy = load_policy(path.read_text(encoding="utf-8"), source=path.name)
    assert policy.tenants
    assert len(policy.digest) == 64


def test_there_are_at_least_three_worked_examples() -> None:
    names = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert {"saas-tiers.yaml", "agency.yaml", "minimal.yaml"} <= names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "policy.yaml: the policy is empty; it needs at least 'version: 1'"),
        ("# only a comment\n", "policy.yaml: the policy is empty; it needs at least 'version: 1'"),
        ("- version: 1\n", "policy.yaml: the policy must be a mapping of keys, got a list"
         " (line 1)"),
        ("tiers: {}\n", "policy.yaml: missing required key 'version' (line 1)"),
        ("version: true\n", "policy.yaml:version: unsupported policy version true;"
         " this gateway reads version 1 (line 1)"),
        ("version: 1\nrule: []\n", "policy.yaml:rule: unknown key 'rule'; did you mean 'rules'?"
         " (line 2)"),
        ("version: 1\nextras: 1\n", "policy.yaml:extras: unknown key 'extras'; expected one of:"
         " version, admin_keys, tiers, tenants, pricing, rules, moderation (line 2)"),
        ("version: 1\ntiers: {Free: {}}\n", "policy.yaml:tiers.Free: invalid key: tier name 'Free'"
         " is not valid: use lowercase letters, digits, '_' and '-' (at most 63, first a letter"
         " or digit) (line 2)"),
        ("version: 1\npricing: []\n", "policy.yaml:pricing: lists no models; omit pricing to use"
         " the default prices (line 2)"),
        ("version: 1\nrules:\n- {name: pricing, deny: x}\n", "policy.yaml:rules[0].name: rule"
         " name 'pricing' is reserved: the engine denies under that name (line 3)"),
        ("version: 1\nrules:\n- {name: a, when: ' ', deny: x}\n", "policy.yaml:rules[0].when:"
         " the condition is empty (omit `when` to match every request) (line 3)"),
        ("version: 1\nrules:\n- {name: a, mode: dry-run, deny: x}\n", "policy.yaml:rules[0].mode:"
         " expected 'enforce' or 'shadow', got 'dry-run' (line 3)"),
        ("version: 1\nrules:\n- {name: a, when: true, deny: x}\n", "policy.yaml:rules[0].when:"
         " expected a string, got true (quote it: YAML reads yes/no/on/off/true/false as"
         " booleans) (line 3)"),
        ("version: 1\nrules:\n- {name: a, deny: ''}\n", "policy.yaml:rules[0].deny:"
         " must not be empty (line 3)"),
        ("version: 1\nrules:\n- {name: a, set: {quality: best}}\n", "policy.yaml:rules[0].set"
         ".quality: expected 'standard' or 'premium', got 'best' (line 3)"),
        ("version: 1\nrules:\n- {name: a, set: {cfg_scale: .nan}}\n", "policy.yaml:rules[0].set"
         ".cfg_scale: must be a finite number, got nan (line 3)"),
        ("version: 1\nrules:\n- {name: a, route: 'amazon titan'}\n", "policy.yaml:rules[0].route:"
         " model id 'amazon titan' is not valid: 1-2048 characters, no spaces (line 3)"),
        ("version: 1\ntiers:\n  t: {budget: {alert_thresholds: [1.5]}}\n", "policy.yaml:tiers.t"
         ".budget.alert_thresholds[0]: must be at most 1.0, got 1.5 (line 3)"),
        ("version: 1\ntiers:\n  t: {quotas: {images_per_day: 0}}\n", "policy.yaml:tiers.t.quotas"
         ".images_per_day: must be at least 1, got 0 (line 3)"),
        ("version: 1\ntiers:\n  t: {budget: {daily_usd: '5'}}\n", "policy.yaml:tiers.t.budget"
         ".daily_usd: expected an amount in USD (a number), got '5' (line 3)"),
        ("version: 1\ntiers:\n  t: {budget: {daily_usd: -1}}\n", "policy.yaml:tiers.t.budget"
         ".daily_usd: an amount of USD must not be negative, got -1 (line 3)"),
        ("version: 1\ntenants: {id: a}\n", "policy.yaml:tenants: expected a list, got a mapping"
         " (line 2)"),
        ("version: 1\nmoderation:\n  categories: [{name: a}]\n", "policy.yaml:moderation"
         ".categories[0]: a category needs terms or patterns (line 3)"),
        ("version: 1\nmoderation:\n  categories: [{name: a, terms: [x]}, {name: a, terms: [y]}]\n",
         "policy.yaml:moderation.categories[1].name: duplicate category name 'a'"
         " (first used at moderation.categories[0].name) (line 3)"),
        ("version: 1\nmoderation:\n  guardrail: {id: g, version: 1}\n", "policy.yaml:moderation"
         ".guardrail.version: expected a string, got 1 (line 3)"),
        ("version: 1\nmoderation:\n  guardrail: {id: g, version: v2}\n", "policy.yaml:moderation"
         ".guardrail.version: guardrail version 'v2' is not valid: a number from 1 to 99999999,"
         " or DRAFT (line 3)"),
        ("version: 1\nrules:\n- {name: a, route: amazon.nova-canvas-v1:0}\n"
         "- {name: b, route: amazon.titan-image-generator-v1}\n", "policy.yaml:rules[1].route:"
         " contradicts rule 'a' (rules[0]): under the same condition that rule routes to"
         " 'amazon.nova-canvas-v1:0' and this one to 'amazon.titan-image-generator-v1' (line 4)"),
        ("version: 1\nrules:\n- {name: a, when: 'true', deny: x}\n- {name: b, mode: shadow,"
         " deny: y}\n", "policy.yaml:rules[1]: unreachable: rule 'a' (rules[0]) before it denies"
         " every request (line 4)"),
        ("version: 1\npricing:\n- model: m\n  sizes:\n  - {max_pixels: 9, standard_usd: 1,"
         " premium_usd: 2}\n  - {max_pixels: 9, standard_usd: 1, premium_usd: 2}\n",
         "policy.yaml:pricing[0].sizes[1].max_pixels: size classes must ascend by max_pixels"
         " (9 after 9) (line 6)"),
    ],
    ids=[
        "empty", "comment only", "a list", "no version", "bool version", "close typo",
        "unknown key", "bad tier name", "empty pricing", "reserved rule name", "blank when",
        "bad mode", "unquoted true", "empty deny", "bad quality", "nan cfg", "model id spaces",
        "threshold above 1", "zero quota", "money as string", "negative money",
        "tenants not a list", "empty category", "duplicate category", "guardrail version int",
        "guardrail version text", "contradicting routes", "shadow after deny-all",
        "pricing not ascending",
    ],
)  # fmt: skip
def test_schema_problems_read_well(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(text)
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    "rules",
    [
        "- {name: a, when: 'request.count > 1', set: {quality: standard}}\n"
        "- {name: b, when: 'request.count > 2', set: {quality: premium}}\n",
        "- {name: a, when: 'request.count > 1', set: {quality: standard}, mode: shadow}\n"
        "- {name: b, when: 'request.count > 1', set: {quality: premium}}\n",
        "- {name: a, when: 'request.count > 1', set: {quality: standard}}\n"
        "- {name: b, when: 'request.count > 1', set: {count: 1}}\n",
        "- {name: a, when: 'request.model == \"x y\"', route: amazon.nova-canvas-v1:0}\n"
        "- {name: b, when: 'request.model == \"xy\"', route: amazon.titan-image-generator-v1}\n",
        "- {name: a, when: 'request.count > 1', deny: nope}\n- {name: b, deny: still no}\n",
    ],
    ids=[
        "different conditions",
        "one is shadow",
        "different fields",
        "spaces inside strings matter",
        "conditional deny first",
    ],
)
def test_rules_that_look_alike_but_are_fine(rules: str) -> None:
    load_policy("version: 1\nrules:\n" + rules)


def test_every_bad_moderation_entry_is_reported_in_file_order() -> None:
    text = (
        "version: 1\n"
        "moderation:\n"
        "  allow: [scunthorpe, '...']\n"
        "  categories:\n"
        "    - {name: a, terms: [ok, '--'], patterns: ['(x', 'z*']}\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(text)
    assert str(caught.value).splitlines() == [
        "policy.yaml:moderation.allow[1]: empty allow-list entry: no letters or digits after"
        " normalisation (line 3)",
        "policy.yaml:moderation.categories[0].terms[1]: empty term: no letters or digits after"
        " normalisation (line 5)",
        "policy.yaml:moderation.categories[0].patterns[0]: invalid regular expression: missing ),"
        " unterminated subpattern at position 0 (line 5)",
        "policy.yaml:moderation.categories[0].patterns[1]: pattern matches empty text, so it would"
        " block every prompt (line 5)",
    ]
