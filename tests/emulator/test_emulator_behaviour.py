"""Operational behaviours: content filters, throttling, faults, latency, test hooks, wiring."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from emulator_helpers import NOVA, TITAN_V2, invoke, invoke_error, to_b64
from PIL import Image

from gateway.emulator import Emulator, EmulatorConfig
from gateway.emulator.cli import main as cli_main

BLOCKED_INPUT = (
    "This request has been blocked by our content filters. "
    "Please adjust your text prompt to submit a new request."
)
ROOT = Path(__file__).resolve().parents[2]


def _body(text: str = "a quiet harbour", seed: int = 1, count: int = 1, **params: Any) -> Any:
    return {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": text, **params},
        "imageGenerationConfig": {
            "width": 320,
            "height": 320,
            "seed": seed,
            "numberOfImages": count,
        },
    }


async def test_input_filter_blocks_with_bedrocks_message(client: Any, emulator: Emulator) -> None:
    emulator.config = EmulatorConfig(input_block_terms=("Forbidden",))
    message = await invoke_error(client, NOVA, _body("a FORBIDDEN castle"), "ValidationException")
    assert message == BLOCKED_INPUT
    negative = _body("a castle", negativeText="nothing forbidden")
    assert await invoke_error(client, NOVA, negative, "ValidationException") == BLOCKED_INPUT
    assert len((await invoke(client, NOVA, _body("a castle")))["images"]) == 1


async def test_output_filter_drops_images_with_error(client: Any, emulator: Emulator) -> None:
    clean = await invoke(client, NOVA, _body("a storm", seed=20, count=3))
    emulator.config = EmulatorConfig(output_block_terms=("storm",))
    single = await invoke(client, NOVA, _body("a Storm", seed=20))
    assert single == {
        "images": [],
        "error": "All of the generated images have been blocked by our content filters.",
    }
    partial = await invoke(client, NOVA, _body("a storm", seed=20, count=3))
    assert (
        partial["error"] == "Some of the generated images have been blocked by our content filters."
    )
    assert partial["images"] == [clean["images"][0], clean["images"][2]]


async def test_throttling_quota_over_sliding_window(client: Any, emulator: Emulator) -> None:
    emulator.config = EmulatorConfig(images_per_minute=3)
    await invoke(client, TITAN_V2, _text_titan(count=2))
    await invoke(client, TITAN_V2, _text_titan(count=1))
    message = await invoke_error(client, TITAN_V2, _text_titan(), "ThrottlingException")
    assert message == "Too many requests, please wait before trying again."
    assert emulator.stats.status_counts[429] == 1
    emulator.config = EmulatorConfig(images_per_minute=5)  # a new quota starts a fresh window
    await invoke(client, TITAN_V2, _text_titan(count=5))


def _text_titan(count: int = 1, seed: int = 1) -> dict[str, Any]:
    return {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lamp"},
        "imageGenerationConfig": {
            "width": 512,
            "height": 512,
            "numberOfImages": count,
            "seed": seed,
        },
    }


async def test_fault_seeds_fail_exactly_that_seed(client: Any, emulator: Emulator) -> None:
    emulator.config = EmulatorConfig(fault_seeds=frozenset({13}))
    await invoke_error(client, TITAN_V2, _text_titan(seed=13), "InternalServerException")
    assert len((await invoke(client, TITAN_V2, _text_titan(seed=14)))["images"]) == 1
    assert emulator.stats.status_counts == {500: 1, 200: 1}


async def test_fault_rate_is_reproducible(client: Any, emulator: Emulator) -> None:
    async def outcomes() -> list[bool]:
        results = []
        for _ in range(8):
            try:
                await invoke(client, NOVA, _body())
                results.append(True)
            except client.exceptions.InternalServerException:
                results.append(False)
        return results

    emulator.config = EmulatorConfig(fault_rate=0.5, fault_seed=1)
    first = await outcomes()
    emulator.config = EmulatorConfig(fault_rate=0.5, fault_seed=2)
    emulator.config = EmulatorConfig(fault_rate=0.5, fault_seed=1)
    assert await outcomes() == first
    assert True in first
    assert False in first


async def test_hold_release_and_wait_in_flight(client: Any, emulator: Emulator) -> None:
    emulator.hold()
    tasks = [asyncio.create_task(invoke(client, NOVA, _body(seed=s))) for s in range(3)]
    assert await emulator.wait_in_flight(3, timeout=5)
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in tasks)
    assert emulator.stats.in_flight == 3
    emulator.release()
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    assert all(len(r["images"]) == 1 for r in results)
    assert emulator.stats.in_flight == 0
    assert emulator.stats.max_in_flight == 3
    assert not await emulator.wait_in_flight(1, timeout=0.05)


async def test_client_disconnect_ends_the_request(client: Any, emulator: Emulator) -> None:
    emulator.hold()
    call = asyncio.create_task(invoke(client, NOVA, _body()))
    assert await emulator.wait_in_flight(1, timeout=5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    for _ in range(100):  # bounded: up to 5 s
        if emulator.stats.in_flight == 0:
            break
        await asyncio.sleep(0.05)
    assert emulator.stats.in_flight == 0
    assert emulator.stats.disconnected == 1
    assert emulator.stats.status_counts == {}
    emulator.release()
    assert len((await invoke(client, NOVA, _body()))["images"]) == 1


async def test_latency_and_per_seed_latency(client: Any, emulator: Emulator) -> None:
    emulator.config = EmulatorConfig(latency_ms=150, seed_latency_ms={1: 400, 2: 0})
    started = time.monotonic()
    await invoke(client, NOVA, _body(seed=7))
    assert time.monotonic() - started >= 0.15
    slow = asyncio.create_task(invoke(client, NOVA, _body(seed=1)))
    fast = asyncio.create_task(invoke(client, NOVA, _body(seed=2)))
    done, _ = await asyncio.wait({slow, fast}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    assert done == {fast}
    await slow
    started = time.monotonic()
    await invoke(client, NOVA, _body(seed=0, count=2))  # seeds 0 and 1: the slowest counts
    assert time.monotonic() - started >= 0.4


async def test_unknown_model_is_resource_not_found(client: Any) -> None:
    message = await invoke_error(
        client, "amazon.titan-image-generator-v9", _body(), "ResourceNotFoundException"
    )
    assert message == "Could not resolve the foundation model from the provided model identifier."


async def test_foundation_model_arn_is_accepted(client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-canvas-v1:0"
    assert len((await invoke(client, arn, _body()))["images"]) == 1


async def test_stats_record_calls_with_images_elided(client: Any, emulator: Emulator) -> None:
    image = to_b64(Image.new("RGB", (512, 512), (1, 2, 3)))
    body = {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": image}}
    await invoke(client, NOVA, body)
    await invoke_error(client, NOVA, {"taskType": "NOPE"}, "ValidationException")
    stats = emulator.stats
    assert stats.calls == 2
    assert stats.images_returned == 1
    assert stats.status_counts == {200: 1, 400: 1}
    model_id, recorded = stats.received[0]
    assert model_id == NOVA
    assert recorded["backgroundRemovalParams"]["image"] == f"<image: {len(image)} base64 chars>"
    assert stats.received[1] == (NOVA, {"taskType": "NOPE"})
    stats.reset()
    assert (stats.calls, stats.received, stats.max_in_flight) == (0, [], 0)


async def test_unexpected_errors_become_500_and_server_survives(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*args: object) -> None:
        raise RuntimeError("renderer bug")

    with monkeypatch.context() as patch:
        patch.setattr("gateway.emulator.app.render", explode)
        with caplog.at_level(logging.ERROR, logger="gateway.emulator.app"):
            await invoke_error(client, NOVA, _body(), "InternalServerException")
    assert "renderer bug" in caplog.text
    assert len((await invoke(client, NOVA, _body()))["images"]) == 1


async def test_raw_http_errors_are_bedrock_shaped(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emulator.url}/model/amazon.nova-canvas-v1%3A0/invoke") as resp:
            assert resp.status == 405
            assert resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"
        async with http.post(f"{emulator.url}/nothing/here", json={}) as resp:
            assert resp.status == 404
            assert resp.headers["x-amzn-RequestId"]
            assert "message" in await resp.json()
        url = f"{emulator.url}/model/amazon.nova-canvas-v1%3A0/invoke"
        async with http.post(url, data=b"{}", headers={"Content-Type": "text/plain"}) as resp:
            assert resp.status == 400
            assert resp.headers["x-amzn-ErrorType"] == "ValidationException"
        async with http.post(
            url, data=b"[1, 2]", headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400
            assert r.headers["Content-Type"] == "application/json"


def test_cli_rejects_invalid_config() -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(["--fault-rate", "2"])
    assert info.value.code == 2


async def test_cli_serves_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.emulator", "--port", "0", "--latency-ms", "1",
        "--input-block-term", "x", "--output-block-term", "y",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=10)
        url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http, http.get(f"{url}/") as resp:
            assert resp.status == 404
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
