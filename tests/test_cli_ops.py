"""The CLI as an operator uses it: `estimate`, `usage`, `admin …`, `--json`,
and errors that are one line each (no tracebacks, no repeats), against a real
gateway on port 0, the CLI run as a subprocess."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.cli.output import parse_usd
from policies import hash_key
from tests.auth import DEV_ADMIN_KEY, DEV_KEY, bearer
from tests.imagekit import encode, photo
from titan.gateway.v1 import usage_service_pb2 as usage_pb
from titan.gateway.v1 import usage_service_pb2_grpc

TITAN_V2 = "amazon.titan-image-generator-v2:0"  # offers premium quality
SD35 = "stability.sd3-5-large-v1:0"  # $0.08 an image, the shipped default for text to image
HINT = "is it running (make run)? Use --target HOST:PORT or TITAN_GW_TARGET to point elsewhere."
RULES_POLICY = f"""
version: 1
admin_keys: ["{hash_key(DEV_ADMIN_KEY)}"]
tiers:
  dev:
    budget: {{daily_usd: 100}}
tenants:
  - {{id: dev, tier: dev, api_keys: ["{hash_key(DEV_KEY)}"]}}
rules:
  - name: standard-only
    when: 'request.quality == "premium"'
    set: {{quality: standard}}
  - name: no-bg-removal
    when: 'request.task == "BACKGROUND_REMOVAL"'
    deny: background removal is switched off
"""


async def run_cli(*args: str) -> tuple[int, str, str]:
    """`python -m gateway ARGS` with no TITAN_GW_* from the environment:
    (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_GW_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


def json_lines(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    assert lines, "no output"
    return [json.loads(line) for line in lines]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


async def get_usage(address: str) -> usage_pb.GetUsageResponse:
    async with grpc.aio.insecure_channel(address, interceptors=bearer(DEV_KEY)) as channel:
        stub = usage_service_pb2_grpc.UsageServiceStub(channel)
        report: usage_pb.GetUsageResponse = await stub.GetUsage(usage_pb.GetUsageRequest())
        return report


def assert_written(path: str, folder: Path) -> None:
    assert Path(path).parent == folder
    assert Path(path).stat().st_size > 0


def field_of(stdout: str, label: str) -> str:
    """The value printed beside `label` in `estimate`'s output."""
    for line in stdout.splitlines():
        name, _, value = line.partition("  ")
        if name == label:
            return value.strip()
    raise AssertionError(f"no {label!r} line in {stdout!r}")


@pytest.fixture
async def shipped(make_gateway):
    """The gateway with its shipped default models (SD3.5 Large for text)."""
    return await make_gateway(default_model_id=None)


@pytest.fixture
async def ruled(make_gateway, tmp_path: Path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_POLICY, encoding="utf-8")
    return await make_gateway(policy_file=path, default_model_id=None)


async def test_estimate_prints_what_would_run_and_spends_nothing(shipped) -> None:
    target = ["--target", shipped.address]
    (code, stdout, stderr), (jcode, jout, _) = await asyncio.gather(
        run_cli("estimate", "generate", "a fox", "-n", "4", *target),
        run_cli("estimate", "generate", "a fox", "-n", "4", "--json", *target),
    )
    assert code == 0, stderr
    assert field_of(stdout, "model") == SD35
    assert field_of(stdout, "count") == "4"
    assert field_of(stdout, "size") == "1024x1024"
    assert field_of(stdout, "price/image") == "$0.08"
    assert field_of(stdout, "estimate") == "$0.32"
    assert field_of(stdout, "rewrites") == "none"
    assert field_of(stdout, "fallbacks") == "none"
    assert field_of(stdout, "route arm") == "none"
    assert field_of(stdout, "allowed") == "yes"
    assert jcode == 0
    (estimate,) = json_lines(jout)
    assert estimate["modelId"] == SD35
    assert (estimate["imageCount"], estimate["estimatedCostMicros"]) == (4, "320000")
    assert estimate["allowed"] is True
    report = await get_usage(shipped.address)
    assert [b.spent_micros + b.reserved_micros for b in report.budgets] == [0]


async def test_rewrites_are_shown_by_estimate_and_on_stderr_of_a_task(ruled, tmp_path) -> None:
    target = ["--target", ruled.address]
    premium = ["generate", "a fox", "--quality", "premium", "--model", TITAN_V2, *target]
    (ecode, estdout, estderr), (gcode, gstdout, gstderr) = await asyncio.gather(
        run_cli("estimate", *premium),
        run_cli(*premium, "--out", str(tmp_path / "out")),
    )
    line = "rule standard-only set quality: premium -> standard"
    assert ecode == 0, estderr
    assert field_of(estdout, "rewrite") == line
    assert field_of(estdout, "quality") == "standard"
    assert gcode == 0, gstderr
    assert line in gstderr.splitlines()
    assert [Path(p) for p in gstdout.splitlines()] == sorted((tmp_path / "out").iterdir())


async def test_estimate_of_a_denied_request_names_the_rule_and_exits_1(ruled, tmp_path) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(encode(photo(256, 256)))
    code, stdout, stderr = await run_cli(
        "estimate", "remove-bg", "--image", str(image), "--target", ruled.address,
        "--model", TITAN_V2,
    )  # fmt: skip
    assert code == 1, stderr
    assert field_of(stdout, "allowed") == "no"
    assert field_of(stdout, "denied by") == "no-bg-removal: background removal is switched off"


async def test_usage_prints_the_budgets(gateway) -> None:
    code, stdout, stderr = await run_cli("usage", "--target", gateway.address)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "tenant dev"
    assert lines[1].split()[:5] == ["BUDGET", "LIMIT", "SPENT", "RESERVED", "REMAINING"]
    assert lines[2].split()[:5] == ["day", "$100.00", "$0.00", "$0.00", "$100.00"]
    assert any(line.startswith("requests_per_minute") for line in lines)
    code, stdout, _ = await run_cli("usage", "--json", "--target", gateway.address)
    (report,) = json_lines(stdout)
    assert report["tenantId"] == "dev"
    assert report["budgets"][0]["limitMicros"] == "100000000"


async def test_admin_budget_set_and_top_up_change_the_limit_exactly(gateway) -> None:
    target = ["--target", gateway.address]
    code, stdout, stderr = await run_cli(
        "admin", "budget", "set", "dev", "day", "12.345678", *target
    )
    assert code == 0, stderr
    assert "$12.345678 (override)" in stdout
    assert [b.limit_micros for b in (await get_usage(gateway.address)).budgets] == [12_345_678]
    code, stdout, stderr = await run_cli(
        "admin", "budget", "top-up", "dev", "DAY", "$0.000001", "--json", *target
    )
    assert code == 0, stderr
    (response,) = json_lines(stdout)
    assert response["budget"]["limitMicros"] == "12345679"
    (budget,) = (await get_usage(gateway.address)).budgets
    assert (budget.limit_micros, budget.overridden) == (12_345_679, True)


async def test_an_amount_that_is_not_whole_micro_usd_is_refused_before_any_call() -> None:
    code, stdout, stderr = await run_cli(
        "admin", "budget", "set", "dev", "day", "0.1234567", "--target", unused_address()
    )
    assert code == 2
    assert stdout == ""
    assert "finer than one micro-USD" in stderr
    assert HINT not in stderr  # refused by the CLI, never sent


def test_usd_is_parsed_exactly() -> None:
    assert parse_usd("12.50") == 12_500_000
    assert parse_usd("$0.08") == 80_000
    assert parse_usd("100") == 100_000_000
    assert parse_usd("0") == 0
    assert parse_usd("0.000001") == 1
    assert parse_usd("1e3") == 1_000_000_000
    assert parse_usd("12345678.123456") == 12_345_678_123_456
    for bad in ("abc", "nan", "inf", "-1", "0.0000001", "0.1000000000000000001", "1e30"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_usd(bad)


async def test_admin_records_list_what_a_generate_billed(shipped, tmp_path) -> None:
    target = ["--target", shipped.address]
    code, stdout, stderr = await run_cli(
        "generate", "a fox", "-n", "2", "--json", "--out", str(tmp_path), *target
    )
    assert code == 0, stderr
    events = json_lines(stdout)
    accepted, images, completed = events[0]["accepted"], events[1:-1], events[-1]["completed"]
    assert [sorted(e) for e in images] == [["image"], ["image"]]
    for event in images:
        assert "data" not in event["image"]
        assert_written(event["image"]["path"], tmp_path)
    assert completed["imagesDelivered"] == 2

    (code, stdout, stderr), (jcode, jout, _) = await asyncio.gather(
        run_cli("admin", "records", "--tenant", "dev", *target),
        run_cli("admin", "records", "--limit", "5", "--json", *target),
    )
    assert code == 0, stderr
    mine = [line for line in stdout.splitlines() if accepted["requestId"] in line]
    assert len(mine) == 2
    assert all(SD35 in line and "$0.08" in line for line in mine)
    assert jcode == 0
    (listing,) = json_lines(jout)
    records = [r for r in listing["records"] if r["requestId"] == accepted["requestId"]]
    assert sorted(r["imageIndex"] for r in records) == [0, 1]
    assert sum(int(r["costMicros"]) for r in records) == int(completed["costMicros"]) == 160_000


async def test_admin_usage_denials_and_policy(gateway, tmp_path) -> None:
    target = ["--target", gateway.address]
    code, _, stderr = await run_cli("generate", "a moderatedterm", "--out", str(tmp_path), *target)
    assert code == 2
    (error,) = error_lines(stderr)
    assert error.startswith("error: PERMISSION_DENIED: ")
    runs = await asyncio.gather(
        run_cli("admin", "denials", "--tenant", "dev", *target),
        run_cli("admin", "usage", "dev", *target),
        run_cli("admin", "policy", "status", *target),
        run_cli("admin", "policy", "reload", "--json", *target),
        run_cli("admin", "usage", "dev", "--admin-key", DEV_KEY, *target),
    )
    (dcode, denials, _), (ucode, usage, _), (scode, status, _), (rcode, reload, _) = runs[:4]
    assert dcode == ucode == scode == rcode == 0
    assert "MODERATION_BLOCKED" in denials
    assert "moderation:demo" in denials
    assert usage.splitlines()[0] == "tenant dev"
    assert "digest" in status
    assert "last reload  ok" in status
    (reloaded,) = json_lines(reload)
    assert reloaded["status"]["lastReloadOk"] is True
    code, stdout, stderr = runs[4]
    assert code == 2
    assert stdout == ""
    assert "PERMISSION_DENIED" in stderr


async def test_invalid_argument_prints_each_violation_once(gateway, tmp_path) -> None:
    code, stdout, stderr = await run_cli(
        "generate", "a fox", "-n", "9", "--width", "7", "--height", "7",
        "--target", gateway.address, "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 2
    assert stdout == ""
    (summary,) = error_lines(stderr)
    assert summary.startswith("error: INVALID_ARGUMENT:")
    violations = [line.strip() for line in stderr.splitlines() if line.startswith("  ")]
    assert len(violations) >= 2
    assert any(v.startswith("config.number_of_images:") for v in violations)
    for violation in violations:
        assert stderr.count(violation) == 1, stderr
    assert "Traceback" not in stderr


async def test_out_that_is_a_file_is_one_error_line(gateway, tmp_path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("", encoding="utf-8")
    code, stdout, stderr = await run_cli(
        "generate", "a fox", "--target", gateway.address, "--out", str(a_file)
    )
    assert code == 2
    assert stdout == ""
    assert stderr.splitlines() == [f"error: --out {a_file} is a file, not a folder"]


def unused_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


async def test_an_unreachable_gateway_gets_the_hint(tmp_path) -> None:
    address = unused_address()
    runs = await asyncio.gather(
        run_cli("generate", "a fox", "--target", address, "--out", str(tmp_path)),
        run_cli("usage", "--target", address),
        run_cli("admin", "policy", "status", "--target", address),
        run_cli("estimate", "generate", "a fox", "--target", address, "--json"),
    )
    for code, stdout, stderr in runs:
        assert code == 2
        assert stdout == ""
        assert error_lines(stderr) == [f"error: cannot reach the gateway at {address} — {HINT}"]
        assert "Traceback" not in stderr


@pytest.mark.parametrize("text", ["{not json", '{"noSuchField": 1}'])
def test_policy_explain_with_a_bad_request_file_is_one_error_line(tmp_path, text) -> None:
    path = tmp_path / "request.json"
    path.write_text(text, encoding="utf-8")
    code, stdout, stderr = asyncio.run(
        run_cli("policy", "explain", "policies/examples/dev.yaml", "--tenant", "dev",
                "--request", str(path))
    )  # fmt: skip
    assert code == 2
    assert stdout == ""
    (line,) = stderr.splitlines()
    assert line.startswith(f"error: {path} is not a GenerateImagesRequest in JSON: ")
