"""The `route` effect's mapping form: a sticky A/B split, a fallback chain, and the
prices behind the reservation; plus the base price table `load_policy` builds on."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from policies import (
    Decision,
    Facts,
    Policy,
    PolicyError,
    PriceTable,
    Rewrite,
    RouteSplit,
    ShadowResult,
    TenantFacts,
    evaluate,
    explain,
    load_policy,
)
from policies.pricing import ModelPrice, SizeClass
from policies.routing import bucket
from tests.policies.support import NOVA, NOW, TITAN, facts, policy_with, request

ULTRA = "stability.stable-image-ultra-v1:1"
CORE = "stability.stable-image-core-v1:1"
SD35 = "stability.sd3-5-large-v1:0"
KEYS = [f"key-{n}" for n in range(2000)]

TRIAL = f"""
- name: ultra-trial
  when: request.task == "TEXT_IMAGE"
  route:
    model: {SD35}
    split: {{model: {ULTRA}, share: 0.3}}
    fallback: [{CORE}]
"""


def trial(share: float = 0.3, sticky: str = "tenant", name: str = "ultra-trial") -> Policy:
    split = f"{{model: {ULTRA}, share: {share}, sticky: {sticky}}}"
    return policy_with(f"- {{name: {name}, route: {{model: {SD35}, split: {split}}}}}")


def for_tenant(tenant: str, request_key: str = "", **changes: object) -> Facts:
    return Facts(TenantFacts(tenant, "free"), request(request_key=request_key, **changes))


def treated(decision: Decision) -> bool:
    assert decision.route_split is not None
    return decision.route_split.treatment


def first_tenant_in(policy: Policy, arm: bool) -> str:
    return next(k for k in KEYS if treated(evaluate(policy, for_tenant(k), NOW)) is arm)


# --- the split ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sticky", ["tenant", "request"])
def test_a_split_sends_its_share_of_distinct_keys_to_the_split_model(sticky: str) -> None:
    policy = trial(sticky=sticky)
    if sticky == "tenant":
        decisions = [evaluate(policy, for_tenant(key), NOW) for key in KEYS]
    else:
        decisions = [evaluate(policy, for_tenant("acme", key), NOW) for key in KEYS]
    to_ultra = sum(d.request.model == ULTRA for d in decisions)
    assert 0.25 <= to_ultra / len(KEYS) <= 0.35
    assert all(d.request.model in (ULTRA, SD35) for d in decisions)
    assert all(treated(d) is (d.request.model == ULTRA) for d in decisions)


@pytest.mark.parametrize(
    ("sticky", "vary"),
    [("tenant", "request_key"), ("request", "tenant")],
    ids=["by tenant, whatever the request key", "by request key, whatever the tenant"],
)
def test_the_same_key_always_gets_the_same_arm(sticky: str, vary: str) -> None:
    policy = trial(sticky=sticky)
    for key in KEYS[:50]:
        arms = set()
        for n in range(5):
            tenant, request_key = (key, f"req-{n}") if vary == "request_key" else (f"t{n}", key)
            decision = evaluate(policy, for_tenant(tenant, request_key, count=n + 1), NOW)
            arms.add(decision.request.model)
        assert len(arms) == 1, key


def test_a_request_split_without_a_request_key_buckets_by_tenant() -> None:
    by_request, by_tenant = trial(sticky="request"), trial(sticky="tenant")
    for key in KEYS[:200]:
        keyless = evaluate(by_request, for_tenant(key), NOW)
        assert keyless.request.model == evaluate(by_tenant, for_tenant(key), NOW).request.model
        assert keyless.route_split is not None
        assert (keyless.route_split.sticky, keyless.route_split.keyed_by) == ("request", "tenant")


def test_rules_with_different_names_bucket_independently() -> None:
    first, second = trial(name="trial-a"), trial(name="trial-b")
    a = [evaluate(first, for_tenant(k), NOW).request.model == ULTRA for k in KEYS]
    b = [evaluate(second, for_tenant(k), NOW).request.model == ULTRA for k in KEYS]
    assert a != b
    both = sum(x and y for x, y in zip(a, b, strict=True)) / len(KEYS)
    assert 0.06 <= both <= 0.12  # independent: 0.3 x 0.3 = 0.09


def test_the_bucket_is_the_documented_hash() -> None:
    for rule, key in [("ultra-trial", "acme"), ("r", ""), ("a.b", "req-é")]:
        digest = hashlib.sha256(f"{rule}\0{key}".encode()).digest()
        assert bucket(rule, key) == int.from_bytes(digest[:8], "big") / 2**64
        assert 0 <= bucket(rule, key) < 1


@pytest.mark.parametrize("arm", [True, False], ids=["treatment", "control"])
def test_the_arm_is_recorded_on_both_arms(arm: bool) -> None:
    policy = policy_with(TRIAL)
    tenant = first_tenant_in(policy, arm)
    decision = evaluate(policy, for_tenant(tenant), NOW)
    model = ULTRA if arm else SD35
    assert decision.request.model == model
    assert decision.route_arm == f"ultra-trial:{model}"
    assert decision.rewrites == (Rewrite("ultra-trial", "model", TITAN, model),)
    assert decision.route_split == RouteSplit("ultra-trial", ULTRA, 0.3, "tenant", "tenant", arm)
    assert decision.fallbacks == (CORE,)


def test_a_split_without_a_model_keeps_the_request_model_on_the_control_arm() -> None:
    policy = policy_with(f"- {{name: t, route: {{split: {{model: {ULTRA}, share: 0.5}}}}}}")
    tenant = first_tenant_in(policy, False)
    decision = evaluate(policy, for_tenant(tenant), NOW)
    assert (decision.request.model, decision.route_arm, decision.rewrites) == (
        TITAN,
        f"t:{TITAN}",
        (),
    )


# --- fallbacks and prices ----------------------------------------------------------------------

CHAIN = f"- {{name: chain, route: {{model: {CORE}, fallback: [{ULTRA}]}}}}"


def test_the_estimate_covers_the_dearest_model_in_the_chain() -> None:
    decision = evaluate(policy_with(CHAIN), facts(count=2), NOW)
    assert decision.allowed
    assert (decision.request.model, decision.fallbacks) == (CORE, (ULTRA,))
    assert decision.model_prices == ((CORE, 40_000), (ULTRA, 140_000))
    assert decision.price_per_image_micros == 40_000
    assert decision.estimate_micros == 280_000
    assert decision.route_arm == ""  # no split


@pytest.mark.parametrize(
    ("arm", "model", "fallbacks"),
    [(True, ULTRA, (SD35, CORE)), (False, SD35, (ULTRA, CORE))],
    ids=["treatment", "control"],
)
def test_the_chosen_model_is_left_out_of_its_fallbacks(
    arm: bool, model: str, fallbacks: tuple[str, ...]
) -> None:
    split = f"{{model: {ULTRA}, share: 0.3}}"
    chain = f"[{ULTRA}, {SD35}, {CORE}]"
    rules = f"- {{name: ab, route: {{model: {SD35}, split: {split}, fallback: {chain}}}}}"
    policy = policy_with(rules)
    decision = evaluate(policy, for_tenant(first_tenant_in(policy, arm), count=3), NOW)
    assert (decision.request.model, decision.fallbacks) == (model, fallbacks)
    prices = {ULTRA: 140_000, SD35: 80_000, CORE: 40_000}
    assert decision.model_prices == tuple((m, prices[m]) for m in (model, *fallbacks))
    assert decision.estimate_micros == 3 * 140_000


def test_a_later_enforced_route_replaces_the_arm_and_the_fallbacks() -> None:
    decision = evaluate(policy_with(TRIAL + f"- {{name: to-nova, route: '{NOVA}'}}"), facts(), NOW)
    assert decision.request.model == NOVA
    assert (decision.route_arm, decision.fallbacks, decision.route_split) == ("", (), None)
    assert decision.model_prices == ((NOVA, 40_000),)


def test_a_fallback_without_a_price_at_the_size_denies() -> None:
    pricing = f"""
    pricing:
      - model: {ULTRA}
        sizes: [{{max_pixels: 262144, standard_usd: 0.14, premium_usd: 0.14}}]
    """
    decision = evaluate(policy_with(CHAIN, extra=pricing), facts(count=2), NOW)
    message = f"no price for fallback model {ULTRA} at 1024x1024 standard"
    assert (decision.allowed, decision.denied_by, decision.message) == (False, "pricing", message)
    assert (decision.estimate_micros, decision.model_prices) == (0, ())


# --- the string form, shadow mode, explain -----------------------------------------------------


def test_the_string_form_is_unchanged() -> None:
    decision = evaluate(policy_with(f"- {{name: to-nova, route: '{NOVA}'}}"), facts(count=2), NOW)
    assert decision.rewrites == (Rewrite("to-nova", "model", TITAN, NOVA),)
    assert (decision.route_arm, decision.fallbacks, decision.route_split) == ("", (), None)
    assert decision.model_prices == ((NOVA, 40_000),)
    assert (decision.price_per_image_micros, decision.estimate_micros) == (40_000, 80_000)


def test_a_shadow_route_reports_what_it_would_do_and_changes_nothing() -> None:
    shadow = TRIAL.replace("  when:", "  mode: shadow\n  when:")
    policy = policy_with(shadow)
    tenant = first_tenant_in(policy_with(TRIAL), True)
    decision = evaluate(policy, for_tenant(tenant, count=2), NOW)
    assert decision.request == for_tenant(tenant, count=2).request
    assert (decision.rewrites, decision.matched, decision.route_arm, decision.fallbacks) == (
        (),
        (),
        "",
        (),
    )
    assert decision.model_prices == ((TITAN, 10_000),)
    outcome = (
        f"would set model: {TITAN} -> {ULTRA}; arm ultra-trial:{ULTRA} (treatment); fallback {CORE}"
    )
    assert decision.shadow == (ShadowResult("ultra-trial", "route", outcome),)


def test_explain_shows_the_split_and_the_fallback_chain_with_prices() -> None:
    policy = policy_with(TRIAL)
    tenant = first_tenant_in(policy, True)
    report = explain(evaluate(policy, for_tenant(tenant, count=2), NOW))
    assert report == "\n".join(
        [
            "ALLOWED",
            f"request: TEXT_IMAGE on {ULTRA}, 2 images of 1024x1024, standard",
            "rules matched:",
            f"  ultra-trial: routed {TITAN} -> {ULTRA}",
            f"route: ultra-trial split 30% -> {ULTRA} (sticky by tenant), this request: treatment",
            f"fallback: {CORE} ($0.04)",
            "moderation: passed",
            "price: $0.14 per image x 2 = $0.28",
        ]
    )


def test_explain_reports_the_control_arm_and_a_reservation_above_the_price() -> None:
    policy = policy_with(TRIAL.replace(CORE, ULTRA).replace("share: 0.3", "share: 0.125"))
    tenant = first_tenant_in(policy, False)
    report = explain(evaluate(policy, for_tenant(tenant), NOW))
    assert (
        f"route: ultra-trial split 12.5% -> {ULTRA} (sticky by tenant), this request: control\n"
        f"fallback: {ULTRA} ($0.14)\n" in report
    )
    assert report.endswith(
        "price: $0.08 per image x 1 = $0.08; $0.14 reserved (a fallback may cost up to $0.14"
        " per image)"
    )


def test_explain_names_the_key_a_keyless_request_split_used() -> None:
    policy = trial(sticky="request")
    report = explain(evaluate(policy, for_tenant("acme"), NOW))
    assert "(sticky by request; no request key, so by tenant)" in report


# --- loading the mapping form ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("{}", "rules[0].route: route needs at least one of model, split, fallback (line 3)"),
        ("{fallback: []}", "rules[0].route: route needs at least one of model, split, fallback"
         " (line 3)"),
        (f"{{model: {CORE}, fallback: [{ULTRA}, {SD35}, {ULTRA}]}}", "rules[0].route.fallback[2]:"
         f" duplicate fallback model '{ULTRA}' (first used at rules[0].route.fallback[0])"
         " (line 3)"),
        (f"{{model: {CORE}, split: {{model: {CORE}, share: 0.5}}}}", "rules[0].route.split.model:"
         f" split.model is the same as model ('{CORE}'): both arms would use it (line 3)"),
        ("{model: x.y}", "rules[0].route.model: routes to model 'x.y', which has no price"
         " (add it under pricing) (line 3)"),
        ("{split: {model: x.y, share: 0.5}}", "rules[0].route.split.model: splits to model 'x.y',"
         " which has no price (add it under pricing) (line 3)"),
        (f"{{split: {{model: {CORE}, share: 0.5, sticky: session}}}}", "rules[0].route.split"
         ".sticky: expected 'tenant' or 'request', got 'session' (line 3)"),
        (f"{{split: {{model: {CORE}}}}}", "rules[0].route.split: missing required key 'share'"
         " (line 3)"),
        (f"{{modle: {CORE}}}", "rules[0].route.modle: unknown key 'modle'; did you mean 'model'?"
         " (line 3)"),
        ("5", "rules[0].route: expected a model id or a mapping with model, split, fallback,"
         " got 5 (line 3)"),
        (f"{{model: {CORE}, fallback: {ULTRA}}}", "rules[0].route.fallback: expected a list,"
         f" got '{ULTRA}' (line 3)"),
    ],
    ids=[
        "empty", "empty fallback only", "duplicate fallback", "split to the same model",
        "unpriced model", "unpriced split", "bad sticky", "no share", "typo", "a number",
        "fallback not a list",
    ],
)  # fmt: skip
def test_route_problems_read_well(route: str, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(f"version: 1\nrules:\n- {{name: r, route: {route}}}\n")
    assert str(caught.value) == f"policy.yaml:{expected}"


CONTRADICTION = (
    "policy.yaml:rules[1].route: contradicts rule 'a' (rules[0]): under the same condition"
    " that rule routes to {} and this one to {} (line 4)"
)


@pytest.mark.parametrize(
    ("first", "second", "shown"),
    [
        (f"{{model: {CORE}, split: {{model: {ULTRA}, share: 0.3}}}}",
         f"{{model: {CORE}, split: {{model: {ULTRA}, share: 0.5}}}}",
         (f"'{CORE}' (30% to '{ULTRA}' by tenant)", f"'{CORE}' (50% to '{ULTRA}' by tenant)")),
        (f"{CORE}", f"{{model: {CORE}, fallback: [{ULTRA}]}}",
         (f"'{CORE}'", f"'{CORE}' (fallback '{ULTRA}')")),
        (f"{{split: {{model: {ULTRA}, share: 0.3, sticky: request}}}}", f"{NOVA}",
         (f"the request's model (30% to '{ULTRA}' by request)", f"'{NOVA}'")),
    ],
    ids=["different shares", "string and fallback", "split and string"],
)  # fmt: skip
def test_two_routes_under_one_condition_that_differ_contradict(
    first: str, second: str, shown: tuple[str, str]
) -> None:
    text = f"version: 1\nrules:\n- {{name: a, route: {first}}}\n- {{name: b, route: {second}}}\n"
    with pytest.raises(PolicyError) as caught:
        load_policy(text)
    assert str(caught.value) == CONTRADICTION.format(*shown)


def test_the_same_route_written_both_ways_does_not_contradict() -> None:
    rules = f"- {{name: a, route: {CORE}}}\n- {{name: b, route: {{model: {CORE}}}}}\n"
    assert len(load_policy("version: 1\nrules:\n" + rules).rules) == 2


# --- the base price table and per-model overrides ----------------------------------------------

HOUSE = "house.model-v1"


def table(*prices: tuple[str, int]) -> PriceTable:
    return PriceTable.of(ModelPrice(m, (SizeClass(4096 * 4096, p, p + 1),)) for m, p in prices)


def test_default_prices_replace_the_built_in_table() -> None:
    policy = load_policy("version: 1\n", default_prices=table((HOUSE, 5_000)))
    assert policy.price_micros(HOUSE, 1024, 1024, "premium") == 5_001
    assert policy.price_micros(TITAN, 1024, 1024, "standard") is None
    routed = load_policy(
        f"version: 1\nrules: [{{name: r, route: {HOUSE}}}]\n", default_prices=table((HOUSE, 5_000))
    )
    assert evaluate(routed, facts(count=2), NOW).estimate_micros == 10_000
    with pytest.raises(PolicyError, match=f"routes to model '{TITAN}', which has no price"):
        load_policy(
            f"version: 1\nrules: [{{name: r, route: '{TITAN}'}}]\n",
            default_prices=table((HOUSE, 1)),
        )


def test_a_pricing_section_overrides_the_base_table_model_by_model() -> None:
    text = f"""\
version: 1
pricing:
  - model: {CORE}
    sizes: [{{max_pixels: 67108864, standard_usd: 0.03, premium_usd: 0.03}}]
  - model: brand.new-model-v1
    sizes: [{{max_pixels: 67108864, standard_usd: 0.5, premium_usd: 0.5}}]
rules:
  - name: r
    route: {{model: {CORE}, fallback: [brand.new-model-v1, {HOUSE}]}}
"""
    policy = load_policy(text, default_prices=table((HOUSE, 7_000), (CORE, 40_000)))
    assert policy.price_micros(CORE, 1024, 1024, "standard") == 30_000  # overridden
    assert policy.price_micros(HOUSE, 1024, 1024, "standard") == 7_000  # kept from the base
    decision = evaluate(policy, facts(), NOW)
    assert decision.model_prices == (
        (CORE, 30_000),
        ("brand.new-model-v1", 500_000),
        (HOUSE, 7_000),
    )
    assert decision.estimate_micros == 500_000
    # Over the built-in table, the house model is priced nowhere: base and file both miss it.
    with pytest.raises(PolicyError, match=f"falls back to model '{HOUSE}', which has no price"):
        load_policy(text)
    built_in = load_policy(text.replace(f", {HOUSE}]", "]"))
    assert built_in.price_micros(ULTRA, 64, 64, "premium") == 140_000  # the built-in base
    assert built_in.price_micros(CORE, 64, 64, "premium") == 30_000  # the file's override


def test_a_tenant_sticky_split_ignores_the_request_key() -> None:
    plain = facts(count=2)
    keyed = replace(plain, request=replace(plain.request, request_key="client-123"))
    policy = policy_with(TRIAL)
    assert evaluate(policy, keyed, NOW).request.model == evaluate(policy, plain, NOW).request.model
