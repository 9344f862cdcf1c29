"""The container's entry command and health check, run as the image runs them.

No Docker engine here, so the Dockerfile's ENTRYPOINT + CMD run as a process
of the repository's venv (it stands in for /opt/titan-gateway: the venv's
bin/ takes the place of the image's on PATH) with the Dockerfile's ENV, the
few overrides a test machine needs (loopback port 0, the embedded emulator,
a temporary data dir) and the ConfigMap's policy as the mounted file. Then the
HEALTHCHECK command runs against it, exactly as written in the Dockerfile.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.deploy import support

IMAGE_VENV_BIN = "/opt/titan-gateway/bin"
VENV_BIN = str(Path(sys.executable).parent)
STARTUP_TIMEOUT_S = 60.0
CHECK_TIMEOUT_S = 30.0  # Docker allows 5 s; a cold interpreter on a busy CI machine is slower


def image_env(**overrides: str) -> dict[str, str]:
    """This machine's environment without TITAN_GW_*, the Dockerfile's ENV on
    top (PATH pointing at this venv instead of the image's), then `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(support.PREFIX)}
    for name, value in support.runtime_stage().env().items():
        if name == "PATH":
            value = value.replace(IMAGE_VENV_BIN, VENV_BIN).replace("${PATH}", env["PATH"])
        assert "$" not in value, f"ENV {name}={value}: expand it here"
        env[name] = value
    return env | overrides


def resolve(argv: list[str], env: dict[str, str]) -> list[str]:
    """argv[0] looked up on the environment's PATH, as the container would."""
    found = shutil.which(argv[0], path=env["PATH"])
    assert found is not None, f"{argv[0]} is not on PATH"
    assert Path(found).parent == Path(VENV_BIN), f"{argv[0]} resolved outside the venv: {found}"
    return [found, *argv[1:]]


async def run_healthcheck(env: dict[str, str]) -> int:
    """The Dockerfile's HEALTHCHECK command; its exit code."""
    argv = resolve(support.healthcheck().argv, env)
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        return await asyncio.wait_for(proc.wait(), timeout=CHECK_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.fixture
def mounted_policy(tmp_path: Path) -> Path:
    """The ConfigMap's policy file, where the pod would see it mounted."""
    path = tmp_path / "etc" / "policy.yaml"
    path.parent.mkdir()
    path.write_text(support.policy_text(), encoding="utf-8")
    return path


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[str, health.aio.HealthServicer]]:
    """A bare grpc.health.v1 server on loopback whose status the test sets."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(0)


async def test_healthcheck_passes_only_for_serving(
    health_server: tuple[str, health.aio.HealthServicer],
) -> None:
    address, servicer = health_server
    env = image_env(TITAN_GW_LISTEN=address)
    status = health_pb2.HealthCheckResponse
    await servicer.set("", status.SERVING)
    assert await run_healthcheck(env) == 0
    await servicer.set("", status.NOT_SERVING)
    assert await run_healthcheck(env) == 1
    await servicer.set("", status.SERVICE_UNKNOWN)
    assert await run_healthcheck(env) == 1


async def test_healthcheck_fails_without_a_listener() -> None:
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert await run_healthcheck(image_env(TITAN_GW_LISTEN=f"127.0.0.1:{port}")) == 1


async def test_wildcard_listen_is_checked_on_loopback(
    health_server: tuple[str, health.aio.HealthServicer],
) -> None:
    """The image listens on 0.0.0.0:50051; the check connects to 127.0.0.1."""
    address, servicer = health_server
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = address.rpartition(":")[2]
    assert await run_healthcheck(image_env(TITAN_GW_LISTEN=f"0.0.0.0:{port}")) == 0


async def test_entry_command_serves_passes_its_healthcheck_and_stops_on_sigterm(
    tmp_path: Path, mounted_policy: Path
) -> None:
    env = image_env(
        TITAN_GW_LISTEN="127.0.0.1:0",
        TITAN_GW_BACKEND="emulator",
        TITAN_GW_DATA_DIR=str(tmp_path / "data"),
        TITAN_GW_POLICY_FILE=str(mounted_policy),
    )
    argv = resolve(support.entry_argv(), env)
    assert Path(argv[0]).name == "titan-gateway"
    assert argv[1:] == ["serve"]
    stderr = (tmp_path / "stderr.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=stderr
    )
    try:
        address = await _listening_address(proc)
        # In the container the check shares the server's environment; here the
        # server took port 0, so the check is told the port it got.
        check_env = env | {"TITAN_GW_LISTEN": address}
        assert await run_healthcheck(check_env) == 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=60) == 0, _log(tmp_path)
        assert await run_healthcheck(check_env) == 1
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        stderr.close()


@pytest.fixture
def unmounted_policy() -> str:
    """The image's policy path, which nothing mounted on this machine."""
    path = support.runtime_stage().env()["TITAN_GW_POLICY_FILE"]
    if Path(path).exists():
        pytest.skip(f"{path} exists on this machine")
    return path


async def test_entry_command_without_a_mounted_policy_exits_2(
    tmp_path: Path, unmounted_policy: str
) -> None:
    """The image's policy path is only ever a mounted file: without one the
    gateway refuses to start and says why (never falls back to the dev policy)."""
    env = image_env(TITAN_GW_LISTEN="127.0.0.1:0", TITAN_GW_DATA_DIR=str(tmp_path / "data"))
    assert env["TITAN_GW_POLICY_FILE"] == unmounted_policy
    proc = await asyncio.create_subprocess_exec(
        *resolve(support.entry_argv(), env), env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=STARTUP_TIMEOUT_S)
    assert proc.returncode == 2
    assert f"error: policy file {env['TITAN_GW_POLICY_FILE']}" in err.decode()


async def _listening_address(proc: asyncio.subprocess.Process) -> str:
    """Read stdout until the gateway prints where it listens."""
    assert proc.stdout is not None
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=max(remaining, 0.1))
        assert line, f"the gateway exited ({await proc.wait()}) before listening"
        if match := re.search(rb"listening on (127\.0\.0\.1:\d+)", line):
            return match.group(1).decode()


def _log(tmp_path: Path) -> str:
    return (tmp_path / "stderr.log").read_text(encoding="utf-8", errors="replace")[-4000:]
