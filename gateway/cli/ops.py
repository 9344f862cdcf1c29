"""`estimate` and `usage`: what a request would cost, and where a tenant stands.

python -m gateway estimate generate "a red fox" -n 4 --quality premium
python -m gateway usage [--since 2026-11-01T00:00:00Z] [--json]

`estimate TASK …` takes exactly the arguments of the task command TASK (the
same parsers and request builders) but no `--out`, and sends the request to
ImageService.EstimateCost, a dry run that spends nothing: it prints the model,
count, size, price per image, estimate, the policy's rewrites, the fallbacks,
the A/B arm and the verdict; exit 0 when allowed, 1 when the policy would
deny it, 2 when the request failed. `usage` is UsageService.GetUsage with the
tenant key. Both take `--json` (the response message as one JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from gateway.cli.client import (
    Command,
    UsageError,
    add_api_key,
    add_target,
    connect,
    register_commands,
)
from gateway.cli.output import format_usd, print_json, print_rpc_error, print_table, when
from gateway.cli.streaming import rewrite_line
from gateway.client import AsyncGatewayClient, ClientError
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks
from titan.gateway.v1 import usage_service_pb2 as usage_pb

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
T = TypeVar("T")


def call(args: argparse.Namespace, send: Callable[[AsyncGatewayClient], Awaitable[T]]) -> T | None:
    """`send`'s one call to the gateway of `args`; None once its error is printed."""

    async def run() -> T:
        async with connect(args) as gateway:
            return await send(gateway)

    try:
        return asyncio.run(run())
    except ClientError as err:
        print_rpc_error(err, args.target)
        return None


def name(enum: Any, value: int, prefix: str) -> str:
    """`QUALITY_PREMIUM` -> `premium`."""
    return str(enum.Name(value)).removeprefix(prefix).lower()


# ---------------------------------------------------------------- estimate


def add_estimate_command(sub: Subparsers, commands: list[Command]) -> None:
    """Register `estimate TASK …`, one sub-command per task command."""
    cmd = sub.add_parser(
        "estimate",
        help="dry-run a task: what would run, the policy's verdict and the price",
        description="Estimate a task command without running it (EstimateCost): "
        "the same arguments as the task, no --out.",
    )
    task_commands = cmd.add_subparsers(dest="task", required=True, metavar="TASK")
    register_commands(task_commands, commands, with_out=False)
    for parser in task_commands.choices.values():
        parser.set_defaults(run=run_estimate)


def run_estimate(args: argparse.Namespace) -> int:
    """Print EstimateCost's answer; 0 allowed, 1 denied by the policy, 2 failed."""
    try:
        request = args.build(args)
    except (OSError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    est = call(args, lambda gateway: gateway.estimate(request))
    if est is None:
        return 2
    if args.json:
        print_json(est)
    else:
        _print_estimate(est)
    return 0 if est.allowed else 1


def _print_estimate(est: pb.EstimateCostResponse) -> None:
    size = f"{est.width}x{est.height}" if est.width and est.height else "-"
    lines: list[tuple[str, str]] = [
        ("model", est.model_id),
        ("task", name(tasks.TaskType, est.task_type, "TASK_TYPE_")),
        ("count", str(est.image_count)),
        ("size", size),
        ("quality", name(tasks.Quality, est.quality, "QUALITY_")),
        ("price/image", format_usd(est.price_per_image_micros)),
        ("estimate", format_usd(est.estimated_cost_micros)),
    ]
    lines += [("rewrite", rewrite_line(r)) for r in est.rewrites] or [("rewrites", "none")]
    lines += [("shadow", f"rule {s.rule} ({s.effect}): {s.outcome}") for s in est.shadow]
    lines.append(("fallbacks", ", ".join(est.fallback_model_ids) or "none"))
    lines.append(("route arm", est.route_arm or "none"))
    lines.append(("allowed", "yes" if est.allowed else "no"))
    if not est.allowed:
        lines.append(("denied by", f"{est.denied_by or '-'}: {est.message}"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label.ljust(width)}  {value}")


# ------------------------------------------------------------------- usage


def add_usage_command(sub: Subparsers) -> None:
    """Register `usage`: the calling tenant's budgets, quotas and spend."""
    cmd = sub.add_parser("usage", help="your budgets, quotas and spend per model (tenant key)")
    add_target(cmd)
    add_api_key(cmd)
    add_window(cmd)
    cmd.set_defaults(run=run_usage)


def add_window(cmd: argparse.ArgumentParser) -> None:
    """--since / --until: the window of the per-model report."""
    cmd.add_argument("--since", type=timestamp, help="ISO 8601, default 24 h before --until")
    cmd.add_argument("--until", type=timestamp, help="ISO 8601 (UTC unless given), default now")


def timestamp(text: str) -> Timestamp:
    """An ISO 8601 time (UTC unless it says otherwise) as a Timestamp."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-11-30T00:00:00Z"
        ) from None
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return stamp


def run_usage(args: argparse.Namespace) -> int:
    report = call(args, lambda gateway: gateway.usage(args.since, args.until))
    if report is None:
        return 2
    if args.json:
        print_json(report)
    else:
        print_usage(report)
    return 0


def budget_row(budget: usage_pb.BudgetStatus) -> list[str]:
    limit = format_usd(budget.limit_micros) + (" (override)" if budget.overridden else "")
    alerts = ", ".join(f"{a:.0%}" for a in budget.alerts_reached) or "-"
    return [
        name(usage_pb.BudgetPeriod, budget.period, "BUDGET_PERIOD_"),
        limit,
        format_usd(budget.spent_micros),
        format_usd(budget.reserved_micros),
        format_usd(budget.remaining_micros),
        f"{budget.used_fraction:.1%}",
        alerts,
        when(budget.resets_at) if budget.HasField("resets_at") else "never",
    ]


BUDGET_HEADER = ("BUDGET", "LIMIT", "SPENT", "RESERVED", "REMAINING", "USED", "ALERTS", "RESETS")


def print_usage(report: usage_pb.GetUsageResponse) -> None:
    """The usage report as tables: budgets, quotas, spend per model."""
    print(f"tenant {report.tenant_id}")
    if report.budgets:
        print_table(BUDGET_HEADER, [budget_row(b) for b in report.budgets])
    else:
        print("no budget caps")
    quotas = [
        [q.name, str(q.limit), f"{q.period_seconds}s" if q.period_seconds else "at once",
         str(q.available) if q.HasField("available") else "-"]
        for q in report.quotas
    ]  # fmt: skip
    if quotas:
        print_table(("QUOTA", "LIMIT", "PER", "AVAILABLE"), quotas)
    print(
        f"usage {when(report.since)} .. {when(report.until)}: "
        f"{report.window_images} images, {format_usd(report.window_cost_micros)}"
    )
    rows = [[u.model, u.task_type, str(u.images), format_usd(u.cost_micros)] for u in report.usage]
    if rows:
        print_table(("MODEL", "TASK", "IMAGES", "COST"), rows, indent="  ")
