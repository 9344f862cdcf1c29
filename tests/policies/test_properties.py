"""`evaluate` never raises, whatever the facts, and an allowed decision is always priced
(the estimate covering the dearest model of its fallback chain)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Facts, Policy, RequestFacts, TenantFacts, UsageFacts, evaluate, load_policy
from policies.facts import QUALITIES, TASKS
from tests.policies.support import EXAMPLES, NOVA, NOW, TITAN, TITAN_SIZES

SAAS: Policy = load_policy((EXAMPLES / "saas-tiers.yaml").read_text(encoding="utf-8"))
AB_RULE = """
  - name: ab
    when: request.task == "TEXT_IMAGE"
    route:
      split: {model: stability.stable-image-ultra-v1:1, share: 0.4, sticky: request}
      fallback: [stability.stable-image-core-v1:1, amazon.nova-canvas-v1:0]
"""
ROUTED: Policy = load_policy(
    (EXAMPLES / "saas-tiers.yaml")
    .read_text(encoding="utf-8")
    .replace("\nmoderation:", AB_RULE + "\nmoderation:", 1)
)
BIG = 2**70

ints = st.one_of(st.integers(-10, 5000), st.integers(-BIG, BIG))
text = st.text(max_size=20)
requests = st.builds(
    RequestFacts,
    task=st.one_of(st.sampled_from(TASKS), text),
    model=st.one_of(st.sampled_from([TITAN, NOVA, "amazon.titan-image-generator-v1"]), text),
    width=ints,
    height=ints,
    count=ints,
    quality=st.one_of(st.sampled_from(QUALITIES), text),
    prompt_length=ints,
    negative_prompt_length=ints,
    input_images=ints,
    cfg_scale=st.floats(allow_nan=True, allow_infinity=True),
    request_key=text,
)
usages = st.builds(
    UsageFacts,
    budget_used_fraction=st.floats(allow_nan=True, allow_infinity=True),
    images_today=ints,
    images_this_minute=ints,
    requests_this_minute=ints,
    spent_today_micros=st.one_of(ints, st.integers(-(10**400), 10**400)),
)
tenants = st.one_of(
    st.sampled_from([t.facts() for t in SAAS.tenants.values()]),
    st.builds(TenantFacts, id=text, tier=text, labels=st.lists(text, max_size=3).map(tuple)),
)
sizes = st.one_of(
    st.none(),
    st.just(TITAN_SIZES),
    st.lists(st.tuples(ints, ints), max_size=4).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(
    tenant=tenants,
    request=requests,
    usage=usages,
    texts=st.dictionaries(text, text, max_size=3),
    size_options=sizes,
    policy=st.sampled_from([SAAS, ROUTED]),
)
def test_evaluate_never_raises(
    policy: Policy,
    tenant: TenantFacts,
    request: RequestFacts,
    usage: UsageFacts,
    texts: dict[str, str],
    size_options: tuple[tuple[int, int], ...] | None,
) -> None:
    facts = Facts(tenant, request, usage, texts, size_options)
    decision = evaluate(policy, facts, NOW)
    if decision.allowed:
        final = decision.request
        assert final.count >= 1
        assert decision.price_per_image_micros > 0
        models = [model for model, _ in decision.model_prices]
        assert models == [final.model, *decision.fallbacks]
        assert final.model not in decision.fallbacks
        assert decision.model_prices[0][1] == decision.price_per_image_micros
        dearest = max(price for _, price in decision.model_prices)
        assert decision.estimate_micros == dearest * final.count
    else:
        assert decision.denied_by
        assert decision.message
        assert decision.estimate_micros == 0
        assert decision.model_prices == ()
