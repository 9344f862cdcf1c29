"""`admin …`: AdminService from the command line (admin key).

python -m gateway admin budget set TENANT day|month|total USD
python -m gateway admin budget top-up TENANT day|month|total USD
python -m gateway admin usage TENANT [--since T] [--until T]
python -m gateway admin records [--tenant T] [--limit N]
python -m gateway admin denials [--tenant T] [--limit N]
python -m gateway admin policy status|reload
python -m gateway admin audit [--tenant T] [--limit N]

Amounts are typed in USD ("12.50") and sent as exact micro-USD; a typed
amount that is not a whole number of micro-USD is refused, never rounded.
Every command takes `--json` (the response message as one JSON line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.cli.client import add_admin_key, add_target
from gateway.cli.ops import (
    BUDGET_HEADER,
    Subparsers,
    add_window,
    budget_row,
    call,
    name,
    print_usage,
)
from gateway.cli.output import format_usd, parse_usd, print_json, print_table, when
from titan.gateway.v1 import admin_service_pb2 as admin_pb
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
        ("audit", "admin actions (budgets, reloads), newest first", _run_audit),
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


def _run_budget_set(args: argparse.Namespace) -> int:
    period = PERIODS[args.period]
    return _print_budget(args, call(args, lambda gw: gw.set_budget(args.tenant, period, args.usd)))


def _run_budget_top_up(args: argparse.Namespace) -> int:
    period = PERIODS[args.period]
    response = call(args, lambda gw: gw.top_up_budget(args.tenant, period, args.usd))
    return _print_budget(args, response)


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
    response = call(args, lambda gw: gw.tenant_usage(args.tenant, args.since, args.until))
    if response is None:
        return 2
    if args.json:
        print_json(response)
    else:
        print_usage(response.usage)
    return 0


def _run_records(args: argparse.Namespace) -> int:
    header = ("CREATED", "TENANT", "REQUEST", "#", "MODEL", "TASK", "SIZE", "QUALITY", "COST",
              "ARM")  # fmt: skip
    return _listing(
        args, lambda gw: gw.usage_records(args.tenant, args.limit), header,
        lambda response: [
            [when(r.created_at), r.tenant_id, r.request_id, str(r.image_index), r.model,
             r.task, f"{r.width}x{r.height}", r.quality, format_usd(r.cost_micros),
             r.route_arm or "-"]
            for r in response.records
        ],
        "no usage records",
    )  # fmt: skip


def _run_denials(args: argparse.Namespace) -> int:
    header = ("CREATED", "TENANT", "REQUEST", "REASON", "RULE", "MESSAGE")
    return _listing(
        args, lambda gw: gw.denials(args.tenant, args.limit), header,
        lambda response: [
            [when(d.created_at), d.tenant_id, d.request_id, d.reason, d.rule or "-", d.message]
            for d in response.denials
        ],
        "no denials",
    )  # fmt: skip


def _run_audit(args: argparse.Namespace) -> int:
    header = ("CREATED", "ACTOR", "ACTION", "TENANT", "PERIOD", "CHANGE", "OUTCOME")
    return _listing(
        args, lambda gw: gw.audit_log(args.tenant, args.limit), header,
        lambda response: [
            [when(e.created_at), e.actor, _action(e.action), e.tenant_id or "-",
             _period(e.period), _change(e), _outcome(e)]
            for e in response.entries
        ],
        "no admin actions recorded",
    )  # fmt: skip


def _listing(
    args: argparse.Namespace,
    fetch: Callable[[Any], Awaitable[Any]],
    header: tuple[str, ...],
    rows: Callable[[Any], list[list[str]]],
    empty: str,
) -> int:
    """One admin listing: the response as JSON with --json, else a table."""
    response = call(args, fetch)
    if response is None:
        return 2
    if args.json:
        print_json(response)
    else:
        _print_rows(header, rows(response), empty)
    return 0


def _action(action: int) -> str:
    return name(admin_pb.AdminAction, action, "ADMIN_ACTION_")


def _period(period: int) -> str:
    unset = period == usage_pb.BUDGET_PERIOD_UNSPECIFIED
    return "-" if unset else name(usage_pb.BudgetPeriod, period, "BUDGET_PERIOD_")


def _change(entry: admin_pb.AuditEntry) -> str:
    """What changed: caps (and the amount) for budgets, digests for reloads."""
    if entry.action == admin_pb.ADMIN_ACTION_RELOAD_POLICY:
        old, new = entry.old_policy_digest[:12], entry.policy_digest[:12]
        return f"{old} -> {new}" if old != new else f"{new} (unchanged)"
    cap = {f: format_usd(getattr(entry, f)) if entry.HasField(f) else "none"
           for f in ("old_limit_micros", "new_limit_micros")}  # fmt: skip
    change = f"{cap['old_limit_micros']} -> {cap['new_limit_micros']}"
    if entry.HasField("amount_micros"):
        change += f" (+{format_usd(entry.amount_micros)})"
    return change


def _outcome(entry: admin_pb.AuditEntry) -> str:
    first_line = entry.detail.splitlines()[0] if entry.detail else ""
    return f"{entry.outcome}: {first_line}" if first_line else entry.outcome


def _print_rows(header: tuple[str, ...], rows: list[list[str]], empty: str) -> None:
    if rows:
        print_table(header, rows)
    else:
        print(empty, file=sys.stderr)


def _run_status(args: argparse.Namespace) -> int:
    response = call(args, lambda gw: gw.policy_status())
    if response is None:
        return 2
    return _print_status(args, response)


def _run_reload(args: argparse.Namespace) -> int:
    response = call(args, lambda gw: gw.reload_policy())
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
