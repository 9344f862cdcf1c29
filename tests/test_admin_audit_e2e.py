"""The admin audit log over a real channel and from the CLI: every budget
change and reload an admin key makes is listed newest first, refusals too."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from policies import hash_key
from tests.auth import bearer
from tests.test_cli_ops import json_lines, run_cli
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import admin_service_pb2_grpc
from titan.gateway.v1 import usage_service_pb2 as usage_pb

KEY, ADMIN = "tgw_audit_tenant", "tgw_audit_admin"
ACTOR = "admin:" + hash_key(ADMIN)[:19]
DAY, MONTH = usage_pb.BUDGET_PERIOD_DAY, usage_pb.BUDGET_PERIOD_MONTH
POLICY = f"""
version: 1
admin_keys: ["{hash_key(ADMIN)}"]
tiers:
  basic:
    budget: {{daily_usd: 0.02}}
tenants:
  - {{id: alpha, tier: basic, api_keys: ["{hash_key(KEY)}"]}}
  - {{id: beta, tier: basic, api_keys: []}}
"""


@pytest.fixture
async def audited(make_gateway: Any, tmp_path: Path) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return await make_gateway(policy_file=path)


async def admin_calls(address: str, policy_file: Path) -> None:
    """Two changes, two refusals, a good and a bad reload (in that order)."""
    async with grpc.aio.insecure_channel(address, interceptors=bearer(ADMIN)) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        await admin.SetBudget(
            admin_pb.SetBudgetRequest(tenant_id="alpha", period=DAY, limit_micros=50_000)
        )
        await admin.TopUpBudget(
            admin_pb.TopUpBudgetRequest(tenant_id="alpha", period=DAY, amount_micros=10_000)
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await admin.TopUpBudget(
                admin_pb.TopUpBudgetRequest(tenant_id="beta", period=MONTH, amount_micros=5)
            )
        with pytest.raises(grpc.aio.AioRpcError):
            await admin.SetBudget(admin_pb.SetBudgetRequest(tenant_id="nobody", period=DAY))
        await admin.ReloadPolicy(admin_pb.ReloadPolicyRequest())
        await asyncio.to_thread(policy_file.write_text, "version: 1\ntenants: 7\n", "utf-8")
        bad = await admin.ReloadPolicy(admin_pb.ReloadPolicyRequest())
        assert not bad.status.last_reload_ok


async def list_audit(address: str, key: str, **fields: Any) -> admin_pb.ListAuditLogResponse:
    async with grpc.aio.insecure_channel(address, interceptors=bearer(key)) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        response: admin_pb.ListAuditLogResponse = await admin.ListAuditLog(
            admin_pb.ListAuditLogRequest(**fields)
        )
        return response


async def test_every_admin_action_is_listed_newest_first(audited: Any, tmp_path: Path) -> None:
    await admin_calls(audited.address, tmp_path / "policy.yaml")
    entries = list((await list_audit(audited.address, ADMIN)).entries)

    assert [(e.action, e.outcome) for e in entries] == [
        (admin_pb.ADMIN_ACTION_RELOAD_POLICY, "POLICY_INVALID"),
        (admin_pb.ADMIN_ACTION_RELOAD_POLICY, "OK"),
        (admin_pb.ADMIN_ACTION_SET_BUDGET, "NOT_FOUND"),
        (admin_pb.ADMIN_ACTION_TOP_UP_BUDGET, "FAILED_PRECONDITION"),
        (admin_pb.ADMIN_ACTION_TOP_UP_BUDGET, "OK"),
        (admin_pb.ADMIN_ACTION_SET_BUDGET, "OK"),
    ]
    assert {e.actor for e in entries} == {ACTOR}
    assert ADMIN not in str(entries)
    bad_reload, reload, not_found, uncapped, top_up, set_budget = entries
    assert (set_budget.tenant_id, set_budget.period) == ("alpha", DAY)
    assert (set_budget.old_limit_micros, set_budget.new_limit_micros) == (20_000, 50_000)
    assert not set_budget.HasField("amount_micros")
    assert (top_up.old_limit_micros, top_up.new_limit_micros, top_up.amount_micros) == (
        50_000,
        60_000,
        10_000,
    )
    assert (uncapped.tenant_id, uncapped.period, uncapped.amount_micros) == ("beta", MONTH, 5)
    assert not uncapped.HasField("new_limit_micros")
    assert "no month budget to top up" in uncapped.detail
    assert "no tenant 'nobody'" in not_found.detail
    assert reload.old_policy_digest == reload.policy_digest == audited.policies.current.digest
    assert (reload.tenant_id, reload.period) == ("", usage_pb.BUDGET_PERIOD_UNSPECIFIED)
    assert bad_reload.policy_digest == reload.policy_digest  # the last good policy still serves
    assert "tenants" in bad_reload.detail
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)


async def test_the_log_filters_by_tenant_and_needs_an_admin_key(
    audited: Any, tmp_path: Path
) -> None:
    await admin_calls(audited.address, tmp_path / "policy.yaml")
    alpha = await list_audit(audited.address, ADMIN, tenant_id="alpha", limit=1)
    assert [(e.tenant_id, e.action) for e in alpha.entries] == [
        ("alpha", admin_pb.ADMIN_ACTION_TOP_UP_BUDGET)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as tenant:
        await list_audit(audited.address, KEY)
    assert tenant.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as too_many:
        await list_audit(audited.address, ADMIN, limit=1001)
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_cli_prints_the_log_as_a_table_and_as_json(audited: Any, tmp_path: Path) -> None:
    await admin_calls(audited.address, tmp_path / "policy.yaml")
    target = ["--target", audited.address, "--admin-key", ADMIN]

    code, stdout, stderr = await run_cli("admin", "audit", "--tenant", "alpha", *target)
    assert code == 0, stderr
    header, newest, oldest = stdout.splitlines()
    assert header.split() == ["CREATED", "ACTOR", "ACTION", "TENANT", "PERIOD", "CHANGE",
                              "OUTCOME"]  # fmt: skip
    assert ACTOR in newest
    assert "top_up_budget" in newest
    assert "$0.05 -> $0.06 (+$0.01)" in newest
    assert "$0.02 -> $0.05" in oldest

    jcode, jout, _ = await run_cli("admin", "audit", "--json", "--limit", "2", *target)
    assert jcode == 0
    (response,) = json_lines(jout)
    assert [e["outcome"] for e in response["entries"]] == ["POLICY_INVALID", "OK"]
    assert response["entries"][0]["action"] == "ADMIN_ACTION_RELOAD_POLICY"
