"""`python -m gateway serve` refuses to start on a configuration it would
silently get wrong: each problem is ONE line on stderr, the exit code is 2,
and there is no traceback. Run as an operator runs it (a subprocess), with
an environment holding no inherited `TITAN_GW_*` variables."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.server import start_gateway
from gateway.settings import DEV_POLICY, load_settings
from policies import hash_key
from tests.auth import DEV_KEY, bearer
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60
MIB = 1024 * 1024
OPT_IN = (
    "point policy_file at your own policy, or set allow_dev_policy: true "
    "(TITAN_GW_ALLOW_DEV_POLICY=true) to serve it anyway"
)


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """Ours minus every TITAN_GW_* (and OTEL_*, so nothing else writes to
    stderr), a loopback port 0 and a data dir in tmp_path, then `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("TITAN_GW_", "OTEL_"))}
    env["TITAN_GW_LISTEN"] = "127.0.0.1:0"
    env["TITAN_GW_DATA_DIR"] = str(tmp_path / "data")
    return env | variables


async def refusal(env: dict[str, str], *args: str) -> list[str]:
    """Run `serve`, which must refuse: exit 2, no traceback. Its stderr lines."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = err.decode()
    assert proc.returncode == 2, (proc.returncode, out, stderr)
    assert "Traceback" not in stderr, stderr
    assert b"listening" not in out
    return stderr.splitlines()


async def serves_then_stops(env: dict[str, str]) -> None:
    """Run `serve`, which must come up healthy, then stop it with SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=TIMEOUT_S)
        match = re.search(rb"listening on (127\.0\.0\.1:\d+)", line)
        if not match:
            proc.kill()
            err = await asyncio.wait_for(proc.stderr.read(), timeout=TIMEOUT_S)
            pytest.fail(f"did not serve: {line!r} {err.decode()}")
        async with grpc.aio.insecure_channel(match.group(1).decode()) as channel:
            reply = await asyncio.wait_for(
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()),
                timeout=TIMEOUT_S,
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=TIMEOUT_S)
        assert proc.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def own_policy(tmp_path: Path) -> Path:
    """A policy of our own, with a key nobody published."""
    path = tmp_path / "own.yaml"
    path.write_text(
        "version: 1\n"
        "tiers:\n  t: {}\n"
        f"tenants:\n  - {{id: acme, tier: t, api_keys: ['{hash_key('tgw_test_own_key')}']}}\n",
        encoding="utf-8",
    )
    return path


# -- unknown variables -----------------------------------------------------------


async def test_a_misspelt_variable_is_refused_naming_the_setting_it_meant(
    tmp_path: Path,
) -> None:
    env = environment(tmp_path, TITAN_GW_BACKND="bedrock")
    assert await refusal(env) == [
        "error: unknown variable TITAN_GW_BACKND: no setting 'backnd' "
        "(did you mean 'backend', TITAN_GW_BACKEND?)"
    ]


async def test_a_misspelt_nested_variable_is_refused_against_the_nested_fields(
    tmp_path: Path,
) -> None:
    env = environment(tmp_path, TITAN_GW_EMULATOR__LATENCY="5")
    assert await refusal(env) == [
        "error: unknown variable TITAN_GW_EMULATOR__LATENCY: no setting 'emulator.latency' "
        "(did you mean 'emulator.latency_ms', TITAN_GW_EMULATOR__LATENCY_MS?)"
    ]


async def test_every_problem_is_its_own_line(tmp_path: Path) -> None:
    env = environment(tmp_path, TITAN_GW_BACKND="bedrock", TITAN_GW_XYZZY="1")
    assert await refusal(env) == [
        "error: unknown variable TITAN_GW_BACKND: no setting 'backnd' "
        "(did you mean 'backend', TITAN_GW_BACKEND?)",
        "error: unknown variable TITAN_GW_XYZZY: no setting 'xyzzy'",
    ]


async def test_the_cli_clients_variables_are_not_settings_but_allowed(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        TITAN_GW_TARGET="127.0.0.1:1",
        TITAN_GW_API_KEY="k",
        TITAN_GW_ADMIN_KEY="a",
        TITAN_GW_BACKEND_CONCURRENCY="0",  # so that it stops after loading the settings
    )
    assert await refusal(env) == [
        "error: setting backend_concurrency: Input should be greater than or equal to 1 "
        "(from TITAN_GW_BACKEND_CONCURRENCY)"
    ]


# -- bad settings and files --------------------------------------------------------


async def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    env = environment(tmp_path, TITAN_GW_BACKEND_CONCURRENCY="0")
    assert await refusal(env) == [
        "error: setting backend_concurrency: Input should be greater than or equal to 1 "
        "(from TITAN_GW_BACKEND_CONCURRENCY)"
    ]


async def test_a_bad_setting_in_the_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("listen_adress: 0.0.0.0:1\nemulator:\n  fault_rate: 2\n", encoding="utf-8")
    assert await refusal(environment(tmp_path), "--config", str(config)) == [
        "error: setting emulator.fault_rate: Input should be less than or equal to 1 "
        f"(from {config})",
        f"error: unknown setting listen_adress (did you mean listen?) (from {config})",
    ]


async def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    env = environment(tmp_path, TITAN_GW_CONFIG=str(missing))
    assert await refusal(env) == [f"error: config file {missing}: No such file or directory"]


async def test_a_missing_policy_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "x.yaml"
    env = environment(tmp_path, TITAN_GW_POLICY_FILE=str(missing))
    assert await refusal(env) == [f"error: policy file {missing}: No such file or directory"]


async def test_an_invalid_policy_file_prints_the_loaders_lines(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text(
        "version: 1\ntenants:\n  - id: a\n    tier: nope\n  - id: b\n    tier: nope\n",
        encoding="utf-8",
    )
    env = environment(tmp_path, TITAN_GW_POLICY_FILE=str(policy))
    assert await refusal(env) == [
        f"error: {policy}:tenants[0].tier: unknown tier 'nope' (no tiers are defined) (line 4)",
        f"error: {policy}:tenants[1].tier: unknown tier 'nope' (no tiers are defined) (line 6)",
    ]


async def test_a_bad_registry_default_is_one_line(tmp_path: Path) -> None:
    env = environment(tmp_path, TITAN_GW_DEFAULT_MODEL_ID="nope")
    assert await refusal(env) == [
        "error: model registry: default_model_id 'nope' is not registered"
    ]


# -- the published dev policy ---------------------------------------------------------


async def test_the_dev_policy_is_refused_on_a_non_loopback_address(tmp_path: Path) -> None:
    env = environment(tmp_path, TITAN_GW_LISTEN="0.0.0.0:0")
    assert await refusal(env) == [
        f"error: policy_file {DEV_POLICY} is the published dev policy, whose keys are public "
        f"in the README: refusing to serve it on the non-loopback address 0.0.0.0:0; {OPT_IN}"
    ]


async def test_real_bedrock_without_a_signing_key_is_refused(tmp_path: Path) -> None:
    """Every replica would sign with a development chain of its own, which no
    validator trusts: against real Bedrock that needs a key, or an opt-in."""
    policy = own_policy(tmp_path)
    env = environment(tmp_path, TITAN_GW_BACKEND="bedrock", TITAN_GW_POLICY_FILE=str(policy))
    [line] = await refusal(env)
    assert line.startswith("error: no provenance signing key is configured")
    assert "TITAN_GW_PROVENANCE__KEY_FILE" in line
    assert "TITAN_GW_PROVENANCE__ALLOW_DEVELOPMENT_CHAIN=true" in line
    missing = environment(
        tmp_path, TITAN_GW_BACKEND="bedrock", TITAN_GW_POLICY_FILE=str(policy),
        TITAN_GW_PROVENANCE__KEY_FILE=str(tmp_path / "no-key.pem"),
        TITAN_GW_PROVENANCE__CHAIN_FILE=str(tmp_path / "no-chain.pem"),
    )  # fmt: skip
    assert await refusal(missing) == [
        f"error: provenance.key_file {tmp_path / 'no-key.pem'} is not a readable file",
        f"error: provenance.chain_file {tmp_path / 'no-chain.pem'} is not a readable file",
    ]


async def test_the_dev_policy_is_refused_against_real_bedrock(tmp_path: Path) -> None:
    env = environment(tmp_path, TITAN_GW_BACKEND="bedrock")
    assert await refusal(env) == [
        f"error: policy_file {DEV_POLICY} is the published dev policy, whose keys are public "
        f"in the README: refusing to serve it against real Bedrock (backend: bedrock); {OPT_IN}"
    ]


async def test_a_copy_of_the_dev_policy_is_still_the_dev_policy(tmp_path: Path) -> None:
    copy = tmp_path / "renamed.yaml"
    shutil.copyfile(DEV_POLICY, copy)
    env = environment(tmp_path, TITAN_GW_LISTEN="[::]:0", TITAN_GW_POLICY_FILE=str(copy))
    assert await refusal(env) == [
        f"error: policy_file {copy} is the published dev policy, whose keys are public "
        f"in the README: refusing to serve it on the non-loopback address [::]:0; {OPT_IN}"
    ]


async def test_the_opt_in_serves_the_dev_policy_on_all_interfaces(tmp_path: Path) -> None:
    env = environment(tmp_path, TITAN_GW_LISTEN="0.0.0.0:0", TITAN_GW_ALLOW_DEV_POLICY="true")
    await serves_then_stops(env)


async def test_an_own_policy_serves_on_all_interfaces_without_the_opt_in(tmp_path: Path) -> None:
    policy = own_policy(tmp_path)
    env = environment(tmp_path, TITAN_GW_LISTEN="0.0.0.0:0", TITAN_GW_POLICY_FILE=str(policy))
    await serves_then_stops(env)


# -- one gateway per address -------------------------------------------------------------


async def test_serve_on_an_address_in_use_is_one_line(tmp_path: Path) -> None:
    first = await start_gateway(load_settings(listen="127.0.0.1:0", data_dir=tmp_path / "first"))
    try:
        address = f"127.0.0.1:{first.port}"
        env = environment(tmp_path, TITAN_GW_LISTEN=address)
        assert await refusal(env) == [
            f"error: cannot listen on {address}: address already in use (by another process)"
        ]
    finally:
        await first.stop(0)


async def test_a_second_gateway_on_a_port_in_use_fails(tmp_path: Path) -> None:
    """gRPC sets SO_REUSEPORT by default, so without ("grpc.so_reuseport", 0)
    in the server's options the second gateway binds too and the kernel splits
    connections between the two."""
    first = await start_gateway(load_settings(listen="127.0.0.1:0", data_dir=tmp_path / "first"))
    try:
        address = f"127.0.0.1:{first.port}"
        second_settings = load_settings(listen=address, data_dir=tmp_path / "second")
        try:
            second = await start_gateway(second_settings)
        except (OSError, RuntimeError) as exc:
            assert address in str(exc)  # noqa: PT017 (the bind failure names the address)
        else:
            await second.stop(0)
            pytest.fail(f"a second gateway started on {address}, which the first serves")
    finally:
        await first.stop(0)


# -- the largest request ---------------------------------------------------------------


async def test_a_request_over_max_receive_message_bytes_is_refused_by_grpc(
    tmp_path: Path,
) -> None:
    settings = load_settings(listen="127.0.0.1:0", data_dir=tmp_path, max_receive_message_bytes=MIB)
    gateway = await start_gateway(settings)
    try:
        # The client would send far more; the server's limit is what is tested.
        options = [("grpc.max_send_message_length", 64 * MIB)]
        async with grpc.aio.insecure_channel(
            gateway.address, options=options, interceptors=bearer(DEV_KEY)
        ) as channel:
            stub = image_service_pb2_grpc.ImageServiceStub(channel)

            def estimate(size: int) -> pb.EstimateCostRequest:
                task = tasks.BackgroundRemovalTask(image=b"\0" * size)
                return pb.EstimateCostRequest(
                    request=pb.GenerateImagesRequest(background_removal=task)
                )

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.EstimateCost(estimate(MIB + 1), timeout=TIMEOUT_S)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # Under the limit the request is parsed, and judged on its content.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.EstimateCost(estimate(MIB // 2), timeout=TIMEOUT_S)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await gateway.stop(0)
