"""The policy package stays pure: it imports nothing from the gateway, grpc,
boto or SQL drivers, and with no rules it allows a request unchanged."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import policies

FORBIDDEN = ("gateway", "grpc", "aiobotocore", "botocore", "boto3", "sqlite3", "asyncpg", "redis")


def test_policies_imports_nothing_impure() -> None:
    for path in Path(policies.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path}: imports {name}"


def test_an_empty_policy_allows_the_request_unchanged() -> None:
    policy = policies.load_policy("version: 1\n")
    request = policies.RequestFacts(
        task="TEXT_IMAGE",
        model="amazon.titan-image-generator-v2:0",
        width=1024,
        height=1024,
        count=2,
        quality="standard",
    )
    facts = policies.Facts(tenant=policies.TenantFacts("t", "free"), request=request)
    decision = policies.evaluate(policy, facts, datetime.now(UTC))
    assert decision.allowed
    assert decision.request == request
    assert decision.rewrites == ()
    # AWS bills every Titan size above the 512 class at the 1024 rate ($0.010).
    assert decision.estimate_micros == 2 * 10_000
