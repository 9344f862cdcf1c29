"""`python -m gateway serve` as an operator runs it: it comes up healthy on
the embedded defaults, serves a request, and drains and exits on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.auth import DEV_KEY, bearer
from tests.streams import collect
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks


async def test_serve_comes_up_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "TITAN_GW_LISTEN": "127.0.0.1:0", "TITAN_GW_DATA_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        match = re.search(rb"listening on (127\.0\.0\.1:\d+)", line)
        assert match, line
        address = match.group(1).decode()
        async with grpc.aio.insecure_channel(address, interceptors=bearer(DEV_KEY)) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = image_service_pb2_grpc.ImageServiceStub(channel)
            # The shipped defaults: text to image runs on SD3.5 Large, which
            # takes an aspect ratio rather than a size.
            request = pb.GenerateImagesRequest(
                text_to_image=tasks.TextToImageTask(text="a red fox"),
                config=tasks.ImageGenerationConfig(aspect_ratio="16:9"),
            )
            result = await collect(stub.GenerateImages(request))
            assert result.accepted.model_id == "stability.sd3-5-large-v1:0"
            assert [(i.width, i.height) for i in result.images.values()] == [(1344, 768)]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.fixture
def dev_policy(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the dev policy the test may edit, and its text."""
    text = Path("policies/examples/dev.yaml").read_text(encoding="utf-8")
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


async def test_sighup_reloads_the_policy_file(tmp_path: Path, dev_policy) -> None:
    policy, dev = dev_policy
    env = {
        **os.environ,
        "TITAN_GW_LISTEN": "127.0.0.1:0",
        "TITAN_GW_DATA_DIR": str(tmp_path),
        "TITAN_GW_POLICY_FILE": str(policy),
        "TITAN_GW_POLICY_POLL_S": "3600",  # so only SIGHUP can reload it
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    request = pb.EstimateCostRequest(
        request=pb.GenerateImagesRequest(text_to_image=tasks.TextToImageTask(text="a fox"))
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        match = re.search(rb"listening on (127\.0\.0\.1:\d+)", line)
        assert match, line
        async with grpc.aio.insecure_channel(
            match.group(1).decode(), interceptors=bearer(DEV_KEY)
        ) as channel:
            stub = image_service_pb2_grpc.ImageServiceStub(channel)
            assert (await stub.EstimateCost(request)).allowed
            closed = dev + "rules:\n  - name: closed\n    deny: closed for maintenance\n"
            await asyncio.to_thread(policy.write_text, closed, encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            allowed = True
            for _ in range(100):  # bounded: up to ~5 s
                allowed = (await stub.EstimateCost(request)).allowed
                if not allowed:
                    break
                await asyncio.sleep(0.05)
        assert not allowed
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_verbose_prints_spans_to_the_console(tmp_path: Path) -> None:
    env = {**os.environ, "TITAN_GW_LISTEN": "127.0.0.1:0", "TITAN_GW_DATA_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--verbose",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    request = pb.EstimateCostRequest(
        request=pb.GenerateImagesRequest(text_to_image=tasks.TextToImageTask(text="a fox"))
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        match = re.search(rb"listening on (127\.0\.0\.1:\d+)", line)
        assert match, line
        async with grpc.aio.insecure_channel(
            match.group(1).decode(), interceptors=bearer(DEV_KEY)
        ) as channel:
            await image_service_pb2_grpc.ImageServiceStub(channel).EstimateCost(request)
        proc.send_signal(signal.SIGTERM)
        printed, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert b'"name": "titan.gateway.v1.ImageService/EstimateCost"' in printed
    assert b'"rpc.grpc.status_code": 0' in printed
