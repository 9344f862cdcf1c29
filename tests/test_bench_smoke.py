"""`make bench` keeps working: the benches that need nothing but this
process run end to end at a tiny time per cell (a renamed attribute once
broke `python -m bench streaming` for a whole round without any test noticing)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import grpc

from bench.__main__ import BENCHES
from bench.overhead.callers import image_request, stub
from bench.overhead.floor import BACKENDS
from bench.overhead.processes import gateway_env, spawn, start_standin
from bench.standin import small_png


def test_every_bench_has_an_entry_point() -> None:
    for name in BENCHES:
        assert callable(importlib.import_module(f"bench.{name}").run_bench), name


def test_the_streaming_and_policy_benches_run_and_print_their_tables() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "streaming", "policy", "--seconds", "0.2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "## streaming" in result.stdout
    assert "| gateway, telemetry on " in result.stdout
    assert "## policy" in result.stdout


async def test_the_floor_servers_stream_the_standins_image(tmp_path: Path) -> None:
    """bench.floor (the overhead bench's floor rows) answers GenerateImages with
    the stand-in's PNG through each of its backends, aiobotocore's included."""
    standin = await start_standin(tmp_path)
    try:
        for backend in BACKENDS:
            args = [sys.executable, "-m", "bench.floor", "--standin", standin.address]
            env = gateway_env(tmp_path, standin.address)
            floor = await spawn([*args, "--backend", backend], env, tmp_path / f"{backend}.out",
                                "floor listening")  # fmt: skip
            try:
                async with grpc.aio.insecure_channel(floor.address) as channel:
                    events = [e async for e in stub(channel).GenerateImages(image_request())]
            finally:
                await floor.stop()
            kinds = [e.WhichOneof("event") for e in events]
            assert kinds == ["accepted", "image", "completed"], backend
            assert events[1].image.data == small_png(), backend
    finally:
        await standin.stop()
