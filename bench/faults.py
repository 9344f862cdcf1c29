"""Fault-injection run: a real `python -m gateway serve` process (SQLite
ledger, embedded emulator) under the client-side faults of the money issue,
each with its figure. RSS is the gateway process's, read from /proc.

    1,000 cancelled streams      billed = settled records, nothing left reserved
    40 stalled readers           RSS before / while stalled / after they leave
    300 fuzzed bodies, no key    every status UNAUTHENTICATED, RSS
    300 fuzzed bodies, a key     INVALID_ARGUMENT (never UNKNOWN/INTERNAL), RSS

The paused replica, the hung and dropped store and SIGTERM mid-stream need
PostgreSQL, Redis and several processes: their figures come from the tests
named in the README (tests/replicas, tests/faults).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import grpc

from gateway.ledger import BudgetLimit, Period, SqliteLedger
from policies import hash_key
from tests.auth import DEV_KEY, bearer
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

METHOD = "/titan.gateway.v1.ImageService/GenerateImages"
STALLED = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 65_535)]


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def _request(n: int, seed: int, size: int = 512) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(number_of_images=n, width=size, height=size, seed=seed),
    )


async def _start(data_dir: Path) -> tuple[asyncio.subprocess.Process, str]:
    policy = data_dir / "policy.yaml"  # no quotas: the faults, not the limits, are measured
    policy.write_text(
        f"version: 1\ntiers: {{t: {{budget: {{daily_usd: 100000}}}}}}\n"
        f'tenants: [{{id: dev, tier: t, api_keys: ["{hash_key(DEV_KEY)}"]}}]\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TITAN_GW_", "OTEL_"))}
    env.update(
        TITAN_GW_POLICY_FILE=str(policy),
        TITAN_GW_LISTEN="127.0.0.1:0",
        TITAN_GW_DATA_DIR=str(data_dir),
        TITAN_GW_DEFAULT_MODEL_ID="amazon.titan-image-generator-v2:0",
        TITAN_GW_EMULATOR__LATENCY_MS="300",
        TITAN_GW_SHUTDOWN_GRACE_S="1",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    match = re.search(rb"listening on (127\.0\.0\.1:\d+)", line)
    assert match, line
    return proc, match.group(1).decode()


async def _cancelled_streams(address: str, n: int) -> None:
    async with grpc.aio.insecure_channel(address, interceptors=bearer(DEV_KEY)) as ch:
        stub = image_service_pb2_grpc.ImageServiceStub(ch)

        async def one(i: int) -> None:
            call = stub.GenerateImages(_request(2, 1000 + 2 * i))
            await call.read()  # accepted
            call.cancel()

        for batch in range(0, n, 100):
            await asyncio.gather(*(one(i) for i in range(batch, min(n, batch + 100))))


async def _stalled(address: str, pid: int, n: int) -> tuple[float, float]:
    async with grpc.aio.insecure_channel(
        address, options=STALLED, interceptors=bearer(DEV_KEY)
    ) as ch:
        stub = image_service_pb2_grpc.ImageServiceStub(ch)
        calls = [stub.GenerateImages(_request(5, 10_000 + 10 * i, 1024)) for i in range(n)]
        for call in calls:
            await call.read()
        await asyncio.sleep(5)
        during = _rss_mb(pid)
        for call in calls:
            call.cancel()
    await asyncio.sleep(2)
    return during, _rss_mb(pid)


async def _fuzz(address: str, key: str | None, n: int) -> collections.Counter[str]:
    rng = random.Random(7 if key else 8)
    valid = _request(1, 1).SerializeToString()
    bodies = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            bodies.append(rng.randbytes(rng.randint(1, 4096)))
        elif kind == 1:
            bodies.append(valid[: rng.randint(1, len(valid) - 1)])
        else:
            bodies.append(bytes([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + rng.randbytes(64))
    interceptors = bearer(key) if key else None
    codes: collections.Counter[str] = collections.Counter()
    async with grpc.aio.insecure_channel(address, interceptors=interceptors) as ch:
        call = ch.unary_stream(METHOD, request_serializer=None, response_deserializer=None)
        for body in bodies:
            try:
                async for _ in call(body, timeout=10):
                    pass
                codes["OK"] += 1
            except grpc.aio.AioRpcError as err:
                codes[err.code().name] += 1
    return codes


async def _ledger_figures(data_dir: Path) -> tuple[int, int, int]:
    ledger = SqliteLedger(data_dir / "ledger.db")
    await ledger.start()
    try:
        total = await ledger.settled_total("dev")
        records = await ledger.recent_usage("dev", limit=100_000)
        limit = [BudgetLimit(Period.DAY, 10**12)]
        (state,) = await ledger.budgets("dev", limit, now=datetime.now(UTC))
        return total, sum(r.cost_micros for r in records), state.reserved_micros
    finally:
        await ledger.close()


async def _run() -> list[tuple[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        proc, address = await _start(data)
        try:
            start = _rss_mb(proc.pid)
            rows.append(("gateway RSS at start", f"{start:.0f} MB"))
            await _cancelled_streams(address, 1000)
            await asyncio.sleep(2)
            spent, records, reserved = await _ledger_figures(data)
            rows.append(("1,000 cancelled streams: settled / sum of records / reserved",
                         f"{spent:,} / {records:,} / {reserved:,} µUSD"))  # fmt: skip
            rows.append(("RSS after 1,000 cancelled streams", f"{_rss_mb(proc.pid):.0f} MB"))
            before = _rss_mb(proc.pid)
            during, after = await _stalled(address, proc.pid, 40)
            rows.append(("40 stalled readers (1024², n=5): RSS before / stalled / after",
                         f"{before:.0f} / {during:.0f} / {after:.0f} MB"))  # fmt: skip
            for key in (None, DEV_KEY):
                codes = await _fuzz(address, key, 300)
                who = "with a key" if key else "without a key"
                rows.append((f"300 fuzzed bodies {who}: statuses", dict(codes).__repr__()))
            rows.append(("RSS after the fuzz", f"{_rss_mb(proc.pid):.0f} MB"))
        finally:
            proc.terminate()
            code = await asyncio.wait_for(proc.wait(), 30)
            rows.append(("exit code after SIGTERM", str(code)))
    return rows


def run_bench(seconds: float) -> None:
    del seconds  # fixed workloads, not timed cells
    rows = asyncio.run(_run())
    print("| fault | figure |\n|---|---|")
    for name, figure in rows:
        print(f"| {name} | {figure} |")


if __name__ == "__main__":
    run_bench(0)
