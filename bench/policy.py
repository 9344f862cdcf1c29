"""Policy decision cost: `evaluate()` with 1, 10 and 100 rules, in µs per
request, next to one bare gRPC unary call measured in the same run.

The rules are realistic CEL conditions over tenant, request and usage facts
(most do not match, one in ten does and sets quality), plus moderation over a
two-field prompt, because that is what every request pays.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bench.common import bare_unary_us
from policies import Facts, RequestFacts, TenantFacts, UsageFacts, evaluate, hash_key, load_policy

HEADER = f"""
version: 1
tiers:
  free: {{quotas: {{requests_per_minute: 60}}}}
tenants:
  - {{id: acme, tier: free, labels: [beta], api_keys: ["{hash_key("tgw_bench")}"]}}
moderation:
  categories:
    - {{name: violence, terms: [gore, gory, bloodbath], patterns: ['\\bdecapitat\\w*']}}
    - {{name: sexual, terms: [nude, nsfw, explicit]}}
rules:
"""


def rule(i: int) -> str:
    if i % 10 == 0:
        return (
            f"  - name: r{i}\n"
            f'    when: \'tenant.tier == "free" && request.quality == "premium"\'\n'
            f"    set: {{quality: standard}}\n"
        )
    return (
        f"  - name: r{i}\n"
        f"    when: 'request.pixels > {1_000_000 + i} && usage.budget_used_fraction > 0.{i % 9 + 1}"
        f' && "vip{i}" in tenant.labels\'\n'
        f"    deny: rule {i}\n"
    )


def facts() -> Facts:
    return Facts(
        tenant=TenantFacts(id="acme", tier="free", labels=("beta",)),
        request=RequestFacts(
            task="TEXT_IMAGE",
            model="amazon.titan-image-generator-v2:0",
            width=1024,
            height=1024,
            count=2,
            quality="premium",
            prompt_length=40,
            cfg_scale=8.0,
        ),
        usage=UsageFacts(budget_used_fraction=0.5, images_today=10),
        texts={
            "text_to_image.text": "a red fox in snow, studio light, photorealistic",
            "text_to_image.negative_text": "blurry, low quality",
        },
    )


def decision_us(rules: int, seconds: float) -> float:
    policy = load_policy(HEADER + "".join(rule(i) for i in range(rules)))
    request, now = facts(), datetime.now(UTC)
    for _ in range(200):
        evaluate(policy, request, now)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and calls < 200_000:
        evaluate(policy, request, now)
        calls += 1
    return (time.perf_counter() - start) / calls * 1e6


def run_bench(seconds: float) -> None:
    bare = asyncio.run(bare_unary_us(2000))
    print("| what                              | µs per request | vs one bare gRPC call |")
    print("|-----------------------------------|----------------|-----------------------|")
    print(f"| bare grpc.aio unary call (health) | {bare:>14.1f} | {1:>20.2f}x |")
    for rules in (1, 10, 100):
        cost = decision_us(rules, seconds / 3)
        print(
            f"| policy decision, {rules:>3} rules        | {cost:>14.1f} | {cost / bare:>20.2f}x |"
        )
