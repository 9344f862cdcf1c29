"""`admin …`: AdminService from the command line (admin key).

python -m gateway admin budget set TENANT day|month|total USD
python -m gateway admin budget top-up TENANT day|month|total USD
python -m gateway admin usage TENANT [--since T] [--until T]
python -m gateway admin records [--tenant T] [--limit N]
python -m gateway admin denials [--tenant T] [--limit N]
python -m gateway admin policy status|reload

Amounts are typed in USD ("12.50") and sent as exact micro-USD; a typed
amount that is not a whole number of micro-USD is refused, never rounded.
Every command takes `--json` (the response message as one JSON line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from gateway.cli.client import add_admin_key, add_target
from gateway.cli.ops import (
    BUDGET_HEADER,
    Subparsers,
    add_window,
    budget_row,
    call,
    print_usage,
    window,
)
from gateway.cli.output import format_usd, parse_usd, print_json, print_table, when
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import admin_service_pb2_grpc
from titan.gateway.v1 import usage_service_pb2 as usage_pb

PERIODS = {
    "day": usage_pb.BUDGET_PERIOD_DAY,
    "month": usage_pb.BUDGET_PERIOD_MONTH,
    "total": usage_pb.BUDGET_PERIOD_TOTAL,
}
Runner = Callable[[argparse.Namespace], int]


def add_admin_command(sub: Subparsers) -> None:
    """Register `admin` and its verbs."""
    admin = sub.add_parser("admin", help="budgets, usage, denials and the policy (admin key)")
    verbs = admin.add_subparsers(dest="verb", required=True, metavar="VERB")

    budget = verbs.add_parser("budget", help="set or top up a tenant's budget cap")
    budget_verbs = budget.add_subparsers(dest="budget_verb", required=True, metavar="ACTION")
    for verb, help_text, run in (
        ("set", "set the cap of one period (0 blocks all spending)", _run_budget_set),
        ("top-up", "raise the cap of one period by an amount", _run_budget_top_up),
    ):
        cmd = _leaf(budget_verbs, verb, help_text, run)
        cmd.add_argument("tenant", help="tenant id")
        cmd.add_argument("period", type=str.lower, choices=list(PERIODS))
        cmd.add_argument("usd", type=parse_usd, metavar="USD", help="amount in USD, e.g. 12.50")

    usage = _leaf(verbs, "usage", "a tenant's budgets, quotas and spend", _run_usage)
    usage.add_argument("tenant", help="tenant id")
    add_window(usage)

    for verb, help_text, run in (
        ("records", "usage records, newest first (one per billed image)", _run_records),
        ("denials", "refused requests, newest first", _run_denials),
    ):
        cmd = _leaf(verbs, verb, help_text, run)
        cmd.add_argument("--tenant", default="", help="one tenant (default: all)")
        cmd.add_argument("--limit", type=int, default=0, help="at most N, 1-1000 (default 100)")

    policy = verbs.add_parser("policy", help="the serving policy: status or reload")
    policy_verbs = policy.add_subparsers(dest="policy_verb", required=True, metavar="ACTION")
    _leaf(policy_verbs, "status", "which policy serves, how the last reload went", _run_status)
    _leaf(policy_verbs, "reload", "re-read the policy file now (exit 1 if it fails)", _run_reload)


def _leaf(verbs: Subparsers, verb: str, help_text: str, run: Runner) -> argparse.ArgumentParser:
    cmd = verbs.add_parser(verb, help=help_text)
    add_target(cmd)
    add_admin_key(cmd)
    cmd.set_defaults(run=run)
    return cmd


def _admin(args: argparse.Namespace, method: str, request: Message) -> Any:
    """AdminService.`method`'s response; None once its error is printed."""
    stub = admin_service_pb2_grpc.AdminServiceStub
    return call(args, stub, method, request, args.admin_key)


def _run_budget_set(args: argparse.Namespace) -> int:
    request = admin_pb.SetBudgetRequest(
        tenant_id=args.tenant, period=PERIODS[args.period], limit_micros=args.usd
    )
    return _print_budget(args, _admin(args, "SetBudget", request))


def _run_budget_top_up(args: argparse.Namespace) -> int:
    request = admin_pb.TopUpBudgetRequest(
        tenant_id=args.tenant, period=PERIODS[args.period], amount_micros=args.usd
    )
    return _print_budget(args, _admin(args, "TopUpBudget", request))


def _print_budget(args: argparse.Namespace, response: Any) -> int:
    if response is None:
        return 2
    if args.json:
        print_json(response)
        return 0
    print(f"tenant {args.tenant}")
    print_table(BUDGET_HEADER, [budget_row(response.budget)])
    return 0


def _run_usage(args: argparse.Namespace) -> int:
    request = admin_pb.GetTenantUsageRequest(tenant_id=args.tenant, **window(args))
    response = _admin(args, "GetTenantUsage", request)
    if response is None:
        return 2
    if args.json:
        print_json(response)
    else:
        print_usage(response.usage)
    return 0


def _run_records(args: argparse.Namespace) -> int:
    request = admin_pb.ListUsageRecordsRequest(tenant_id=args.tenant, limit=args.limit)
    response = _admin(args, "ListUsageRecords", request)
    if response is None:
        return 2
    if args.json:
        print_json(response)
        return 0
    header = ("CREATED", "TENANT", "REQUEST", "#", "MODEL", "TASK", "SIZE", "QUALITY", "COST",
              "ARM")  # fmt: skip
    rows = [
        [when(r.created_at), r.tenant_id, r.request_id, str(r.image_index), r.model, r.task,
         f"{r.width}x{r.height}", r.quality, format_usd(r.cost_micros), r.route_arm or "-"]
        for r in response.records
    ]  # fmt: skip
    _print_rows(header, rows, "no usage records")
    return 0


def _run_denials(args: argparse.Namespace) -> int:
    request = admin_pb.ListDenialsRequest(tenant_id=args.tenant, limit=args.limit)
    response = _admin(args, "ListDenials", request)
    if response is None:
        return 2
    if args.json:
        print_json(response)
        return 0
    header = ("CREATED", "TENANT", "REQUEST", "REASON", "RULE", "MESSAGE")
    rows = [
        [when(d.created_at), d.tenant_id, d.request_id, d.reason, d.rule or "-", d.message]
        for d in response.denials
    ]
    _print_rows(header, rows, "no denials")
    return 0


def _print_rows(header: tuple[str, ...], rows: list[list[str]], empty: str) -> None:
    if rows:
        print_table(header, rows)
    else:
        print(empty, file=sys.stderr)


def _run_status(args: argparse.Namespace) -> int:
    response = _admin(args, "GetPolicyStatus", admin_pb.GetPolicyStatusRequest())
    if response is None:
        return 2
    return _print_status(args, response)


def _run_reload(args: argparse.Namespace) -> int:
    response = _admin(args, "ReloadPolicy", admin_pb.ReloadPolicyRequest())
    if response is None:
        return 2
    code = _print_status(args, response)
    return code if response.status.last_reload_ok else 1


def _print_status(
    args: argparse.Namespace,
    response: admin_pb.GetPolicyStatusResponse | admin_pb.ReloadPolicyResponse,
) -> int:
    if args.json:
        print_json(response)
        return 0
    status = response.status
    reload = "ok" if status.last_reload_ok else "FAILED"
    for label, value in (
        ("source", status.source),
        ("digest", status.digest),
        ("loaded at", when(status.loaded_at)),
        ("tenants", str(status.tenant_count)),
        ("rules", str(status.rule_count)),
        ("last reload", f"{reload} at {when(status.last_reload_at)}"),
    ):
        print(f"{label.ljust(11)}  {value}")
    for line in status.last_reload_error.splitlines():
        print(f"  {line}", file=sys.stderr)
    return 0
