"""Tenants: authentication by hashed key, admin keys, tier defaults merged under overrides."""

from __future__ import annotations

import hmac

import pytest

from policies import Budget, Policy, Quotas, TenantFacts, hash_key, load_policy

ACME_KEY, ACME_SPARE_KEY, GLOBEX_KEY, ADMIN_KEY = "k-acme", "k-acme-2", "k-globex", "k-admin"

POLICY = f"""
version: 1
admin_keys: ["{hash_key(ADMIN_KEY)}"]
tiers:
  free:
    quotas: {{requests_per_minute: 10, images_per_minute: 20, images_per_day: 200}}
    budget: {{daily_usd: 1.00, monthly_usd: 10, alert_thresholds: [1.0, 0.8]}}
  pro: {{}}
tenants:
  - id: acme
    tier: free
    labels: [beta, nova]
    api_keys: ["{hash_key(ACME_KEY)}", "{hash_key(ACME_SPARE_KEY)}"]
    quotas: {{images_per_day: 500, requests_per_minute: null}}
    budget: {{daily_usd: 5}}
  - id: globex
    tier: pro
    api_keys: ["{hash_key(GLOBEX_KEY)}"]
  - id: keyless
    tier: free
"""


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY)


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("tgw_dev_key") == (
        "sha256:e2d804034c657d5cd1643bfc611c147b184f7a2f6495aa08996bd86ae7ae5882"
    )


@pytest.mark.parametrize(
    ("key", "tenant"),
    [
        (ACME_KEY, "acme"),
        (ACME_SPARE_KEY, "acme"),
        (GLOBEX_KEY, "globex"),
        ("k-unknown", None),
        ("", None),
        (ADMIN_KEY, None),
        (hash_key(ACME_KEY), None),
    ],
    ids=["first key", "second key", "other tenant", "unknown", "empty", "admin key", "the hash"],
)
def test_authenticate(policy: Policy, key: str, tenant: str | None) -> None:
    found = policy.authenticate(key)
    assert (found.id if found else None) == tenant


@pytest.mark.parametrize(
    ("key", "admin"),
    [(ADMIN_KEY, True), (ACME_KEY, False), ("k-unknown", False)],
    ids=["admin", "tenant key", "unknown"],
)
def test_is_admin(policy: Policy, key: str, admin: bool) -> None:
    assert policy.is_admin(key) is admin


def test_every_stored_hash_is_compared_whichever_matches(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for key in (ACME_KEY, GLOBEX_KEY, "k-unknown"):
        calls.clear()
        policy.authenticate(key)
        assert len(calls) == 3  # all three tenant hashes, even when the first one matched


def test_tenant_overrides_merge_over_the_tier(policy: Policy) -> None:
    acme = policy.tenants["acme"]
    assert acme.quotas == Quotas(
        requests_per_minute=None,  # an explicit null lifts the tier's limit
        images_per_minute=20,
        images_per_day=500,
        max_concurrent_requests=None,
    )
    assert acme.budget == Budget(
        daily_micros=5_000_000,
        monthly_micros=10_000_000,
        total_micros=None,
        alert_thresholds=(0.8, 1.0),
    )
    assert acme.facts() == TenantFacts("acme", "free", ("beta", "nova"))


def test_a_tenant_without_overrides_gets_its_tier(policy: Policy) -> None:
    keyless = policy.tenants["keyless"]
    assert keyless.quotas == Quotas(10, 20, 200, None)
    assert keyless.budget.daily_micros == 1_000_000
    assert policy.tenants["globex"].budget == Budget()


def test_the_policy_is_immutable(policy: Policy) -> None:
    with pytest.raises(AttributeError):
        policy.rules = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.tenants["evil"] = policy.tenants["acme"]  # type: ignore[index]


def test_the_digest_names_the_text() -> None:
    assert load_policy(POLICY).digest == load_policy(POLICY).digest
    assert load_policy(POLICY).digest != load_policy(POLICY + "\n").digest


def test_a_policy_reads_usage_only_when_a_rule_names_it() -> None:
    from policies import load_policy

    base = "version: 1\nrules:\n  - name: r\n    when: '{when}'\n    deny: stop\n"
    assert load_policy(base.format(when="usage.images_today > 5")).reads_usage
    assert load_policy(base.format(when="usage . budget_used_fraction > 0.5")).reads_usage
    assert not load_policy(base.format(when="request.count > 5")).reads_usage
    assert not load_policy("version: 1\n").reads_usage
