"""The shipped examples behave as their comments say."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from policies import Facts, Policy, RequestFacts, TenantFacts, evaluate, load_policy
from tests.policies.support import EXAMPLES, NOVA, NOW, TITAN, TITAN_SIZES


def example(name: str) -> Policy:
    return load_policy((EXAMPLES / name).read_text(encoding="utf-8"), source=name)


@pytest.fixture(scope="module")
def saas() -> Policy:
    return example("saas-tiers.yaml")


@pytest.fixture(scope="module")
def agency() -> Policy:
    return example("agency.yaml")


def ask(tenant: TenantFacts, **changes: Any) -> Facts:
    request = RequestFacts("TEXT_IMAGE", TITAN, 1024, 1024, 1, "standard", cfg_scale=8.0)
    return Facts(tenant, replace(request, **changes))


@pytest.mark.parametrize(
    ("key", "tenant"),
    [
        ("tgw_demo_free_key", "free-demo"),
        ("tgw_demo_pro_key", "pro-demo"),
        ("tgw_demo_enterprise_key", "enterprise-demo"),
    ],
)
def test_saas_demo_keys(saas: Policy, key: str, tenant: str) -> None:
    found = saas.authenticate(key)
    assert found is not None
    assert found.id == tenant
    assert saas.is_admin("tgw_demo_admin_key")


def test_saas_free_premium_batch_is_made_standard_and_small(saas: Policy) -> None:
    free = saas.tenants["free-demo"].facts()
    facts = ask(free, quality="premium", count=5, width=1408, height=768)
    decision = evaluate(saas, Facts(free, facts.request, size_options=TITAN_SIZES), NOW)
    assert decision.allowed
    assert decision.matched == ("free-standard-quality", "free-size-cap")
    assert (decision.request.quality, decision.request.count) == ("standard", 2)
    assert (decision.request.width, decision.request.height) == (704, 384)
    assert decision.estimate_micros == 16_000


def test_saas_free_background_removal_is_denied(saas: Policy) -> None:
    free = saas.tenants["free-demo"].facts()
    decision = evaluate(saas, ask(free, task="BACKGROUND_REMOVAL", width=800, height=600), NOW)
    assert (decision.denied_by, decision.message) == (
        "no-bg-removal-on-free",
        "background removal needs a paid plan",
    )


def test_saas_pro_batch_trial_is_shadow_only(saas: Policy) -> None:
    pro = saas.tenants["pro-demo"].facts()
    decision = evaluate(saas, ask(pro, count=5), NOW)
    assert decision.allowed
    assert decision.request.count == 5
    assert [s.outcome for s in decision.shadow] == ["would set count: 5 -> 4"]


def test_saas_moderation_blocks_leetspeak(saas: Policy) -> None:
    pro = saas.tenants["pro-demo"].facts()
    facts = Facts(pro, ask(pro).request, texts={"text_to_image.text": "a nud3 portrait"})
    decision = evaluate(saas, facts, NOW)
    assert decision.denied_by == "moderation:sexual"


def test_agency_routes_nova_clients_and_prices_them(agency: Policy) -> None:
    acme = agency.tenants["acme"].facts()
    decision = evaluate(agency, ask(acme, count=2), NOW)
    assert decision.request.model == NOVA
    assert decision.request.quality == "premium"  # print client
    assert decision.estimate_micros == 120_000


def test_agency_denies_big_nova_batches(agency: Policy) -> None:
    initech = agency.tenants["initech"].facts()
    decision = evaluate(agency, ask(initech, count=4, width=2048, height=1024), NOW)
    assert decision.denied_by == "no-huge-nova-batches"


def test_agency_guardrail_and_budgets(agency: Policy) -> None:
    assert agency.guardrail is not None
    assert agency.guardrail.version == "3"
    assert agency.tenants["globex"].budget.daily_micros == 5_500_000
    assert agency.tenants["globex"].budget.monthly_micros == 300_000_000
    assert agency.tenants["globex"].budget.total_micros == 150_000_000


def test_minimal_allows_everything_priced() -> None:
    policy = example("minimal.yaml")
    solo = policy.authenticate("tgw_demo_minimal_key")
    assert solo is not None
    decision = evaluate(policy, ask(solo.facts(), count=3, quality="premium"), NOW)
    assert decision.allowed
    assert decision.estimate_micros == 36_000  # Titan 1024x1024 premium: $0.012 an image
