"""The policy engine: pure functions from policy text and request facts to decisions.

No I/O, no clock reads, no randomness, no imports from the gateway, grpc, boto,
SQL drivers or OpenTelemetry: text in, objects out. ::

    policy = load_policy(text, source="policy.yaml")      # or PolicyError, every problem listed
    tenant = policy.authenticate(api_key)                  # or None
    decision = evaluate(policy, Facts(tenant.facts(), request_facts), now)
    print(explain(decision))

The file format is documented in the README (Policy file); CEL variables in
`policies.conditions`.
"""

from policies.conditions import declared_variables
from policies.decision import Decision, Rewrite, RouteSplit, ShadowResult
from policies.engine import evaluate
from policies.explain import explain
from policies.facts import Facts, RequestFacts, TenantFacts, UsageFacts
from policies.loader import load_policy
from policies.moderation import ModerationVerdict
from policies.money import format_usd
from policies.policy import GuardrailRef, Policy
from policies.pricing import PriceTable
from policies.problems import PolicyError, PolicyProblem
from policies.rules import Rule
from policies.tenants import Budget, Quotas, Tenant, hash_key

__all__ = [
    "Budget",
    "Decision",
    "Facts",
    "GuardrailRef",
    "ModerationVerdict",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "PriceTable",
    "Quotas",
    "RequestFacts",
    "Rewrite",
    "RouteSplit",
    "Rule",
    "ShadowResult",
    "Tenant",
    "TenantFacts",
    "UsageFacts",
    "declared_variables",
    "evaluate",
    "explain",
    "format_usd",
    "hash_key",
    "load_policy",
]
