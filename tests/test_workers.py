"""`workers: 2`: one `python -m gateway serve` parent and two worker processes
on one port (SO_REUSEPORT), run as an operator runs them.

Each gateway is a real subprocess with `backend: bedrock` pointed at an
emulator this test serves in-process (so it can hold calls in flight), a
SQLite ledger in tmp_path and the local Redis under a prefix of its own.
Which worker holds a connection is read from /proc (the socket's inode among
the worker's descriptors), not guessed from timing. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.sdk.resources import Resource

from gateway.emulator import Emulator, EmulatorConfig
from gateway.ledger import BudgetLimit, Period, SqliteLedger
from gateway.workers.child import instance_base, with_instance_id
from policies import hash_key
from tests.auth import bearer
from tests.replicas.harness import REDIS_URL, redis_prefix
from tests.streams import StreamResult, collect, find_detail
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

ROOT = Path(__file__).resolve().parent.parent
# The cheapest Stability model to draw (no retired model: `backend: bedrock`).
MODEL = "stability.stable-image-core-v1:1"
PRICE = 40_000  # its price per image, micro-USD
KEY = "tgw_test_workers_key"
START_S = 45.0  # imports, migrations and two workers on a busy 2-core machine
STOP_S = 30.0
CALL_S = 30.0
READY = re.compile(rb"Titan Image Gateway listening on (127\.0\.0\.1:\d+)")
PIDS = re.compile(r"2 workers serving on \S+: pids (\d+), (\d+)")
ADDRESS_IN_USE = "address already in use (by another process)"


# ------------------------------------------------------------------- the processes


@dataclass
class Gateway:
    """A running `serve` parent: its process, address, workers' pids and stderr."""

    process: asyncio.subprocess.Process
    address: str
    workers: tuple[int, int]
    log: Path

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def stderr(self) -> str:
        return read_log(self.log)

    async def exit_code(self) -> int:
        return await asyncio.wait_for(self.process.wait(), STOP_S)


def write_policy(path: Path, budget_usd: str | None = None) -> Path:
    """One tenant `acme` with KEY, provenance off (marking is not what is tested)."""
    budget = f", budget: {{total_usd: {budget_usd}}}" if budget_usd else ""
    path.write_text(
        "version: 1\ntiers:\n  t: {}\ntenants:\n"
        f'  - {{id: acme, tier: t, api_keys: ["{hash_key(KEY)}"], provenance: "off"{budget}}}\n',
        encoding="utf-8",
    )
    return path


def environment(tmp_path: Path, emulator_url: str, prefix: str, **variables: str) -> dict[str, str]:
    """No inherited TITAN_GW_/OTEL_/AWS_ variables; two workers on a free port."""
    drop = ("TITAN_GW_", "OTEL_", "AWS_")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}
    return (
        env
        | {
            "TITAN_GW_WORKERS": "2",
            "TITAN_GW_LISTEN": f"127.0.0.1:{free_port()}",
            "TITAN_GW_BACKEND": "bedrock",
            "TITAN_GW_BEDROCK_ENDPOINT_URL": emulator_url,
            "TITAN_GW_DEFAULT_MODEL_ID": MODEL,
            "TITAN_GW_DATA_DIR": str(tmp_path / "data"),
            "TITAN_GW_POLICY_FILE": str(write_policy(tmp_path / "policy.yaml")),
            "TITAN_GW_PROVENANCE__ALLOW_DEVELOPMENT_CHAIN": "true",
            "TITAN_GW_LIMITS_URL": REDIS_URL,
            "TITAN_GW_LIMITS_PREFIX": prefix,
            "TITAN_GW_SHUTDOWN_GRACE_S": "1",
            "TITAN_GW_STORE_TIMEOUT_S": "15",  # two processes on one SQLite file queue
            "AWS_ACCESS_KEY_ID": "AKIATESTWORKERS00000",
            "AWS_SECRET_ACCESS_KEY": "workers/workers/workers/workers/workers0",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        | variables
    )


def read_log(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(env: Mapping[str, str], log: Path) -> AsyncIterator[Gateway]:
    """`serve` until it printed its ready line; at exit SIGTERM (bounded), then SIGKILL."""
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve",
            cwd=ROOT, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=sink,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), START_S)
        match = READY.search(line)
        stderr = read_log(log)
        assert match, f"no ready line: {line!r}\n{stderr}"
        pids = PIDS.search(stderr)
        assert pids, stderr
        yield Gateway(process, match.group(1).decode(), (int(pids[1]), int(pids[2])), log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), STOP_S)
        if process.returncode is None:
            process.kill()
            await process.wait()


async def refusal(env: Mapping[str, str]) -> list[str]:
    """Run `serve`, which must refuse before any worker starts: exit 2, its stderr lines."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        cwd=ROOT, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), START_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = err.decode()
    assert proc.returncode == 2, (proc.returncode, out, stderr)
    assert "Traceback" not in stderr, stderr
    assert "serving on" not in stderr, stderr  # no worker started
    assert b"listening" not in out
    return stderr.splitlines()


def alive(pid: int) -> bool:
    """Whether `pid` still exists (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


async def until_gone(pids: tuple[int, ...], within_s: float = STOP_S) -> list[int]:
    """The pids still alive after at most `within_s`."""
    for _ in range(int(within_s / 0.1)):
        if not any(alive(p) for p in pids):
            break
        await asyncio.sleep(0.1)
    return [p for p in pids if alive(p)]


def connections(pids: tuple[int, ...], port: int) -> dict[int, int]:
    """How many established TCP connections to `port` each process holds."""
    inodes = set()
    # gRPC binds 127.0.0.1 as a dual-stack socket: its connections are in tcp6.
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # TCP_ESTABLISHED, server side
                inodes.add(fields[9])
    held = {}
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        links = {os.readlink(fd) for fd in fds.iterdir() if fd.is_symlink()}
        held[pid] = sum(f"socket:[{inode}]" in links for inode in inodes)
    return held


# -------------------------------------------------------------------- the clients


def channels(address: str, n: int) -> list[grpc.aio.Channel]:
    """`n` channels, each on a connection of its own (gRPC shares subchannels
    between equal channels unless each keeps a pool of its own)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    return [
        grpc.aio.insecure_channel(address, options=options, interceptors=bearer(KEY))
        for _ in range(n)
    ]


def text_to_image(seed: int) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox in snow"),
        config=tasks.ImageGenerationConfig(number_of_images=1, aspect_ratio="1:1", seed=seed),
    )


async def generate(channel: grpc.aio.Channel, seed: int) -> StreamResult:
    stub = image_service_pb2_grpc.ImageServiceStub(channel)  # type: ignore[no-untyped-call]
    return await collect(stub.GenerateImages(text_to_image(seed), timeout=CALL_S))


async def close(open_channels: list[grpc.aio.Channel]) -> None:
    await asyncio.gather(*(c.close() for c in open_channels))


async def open_ledger(tmp_path: Path) -> SqliteLedger:
    ledger = SqliteLedger(tmp_path / "data" / "ledger.db")
    await ledger.start()
    return ledger


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The Bedrock the workers call, in this process (released and stopped at exit)."""
    emulator = Emulator(EmulatorConfig())
    await emulator.start("127.0.0.1", 0)
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async with redis_prefix() as value:
        yield value


# ------------------------------------------------------------------------- tests


async def test_two_workers_share_the_port_and_both_serve(
    tmp_path: Path, emulator: Emulator, prefix: str
) -> None:
    env = environment(tmp_path, emulator.url, prefix)
    async with serving(env, tmp_path / "serve.log") as gateway:
        assert gateway.process.pid not in gateway.workers
        open_channels = channels(gateway.address, 24)
        try:
            results = await asyncio.gather(
                *(generate(c, seed) for seed, c in enumerate(open_channels, 1))
            )
            # Each channel is one connection, accepted by one worker; a worker
            # holding one has served the request that went over it.
            held = connections(gateway.workers, gateway.port)
        finally:
            await close(open_channels)
        assert [len(r.images) for r in results] == [1] * 24
        assert sum(held.values()) == 24, held
        assert all(count > 0 for count in held.values()), f"one worker took all: {held}"
        gateway.process.send_signal(signal.SIGTERM)
        assert await gateway.exit_code() == 0, gateway.stderr()
    ledger = await open_ledger(tmp_path)
    try:
        assert await ledger.settled_total("acme") == 24 * PRICE
    finally:
        await ledger.close()


async def test_a_budget_is_exact_across_workers(
    tmp_path: Path, emulator: Emulator, prefix: str
) -> None:
    images = 6
    limit = images * PRICE
    env = environment(tmp_path, emulator.url, prefix)
    write_policy(Path(env["TITAN_GW_POLICY_FILE"]), budget_usd=f"{limit / 1_000_000:.2f}")
    async with serving(env, tmp_path / "serve.log") as gateway:
        open_channels = channels(gateway.address, 3 * images)
        try:
            outcomes = await asyncio.gather(
                *(generate(c, seed) for seed, c in enumerate(open_channels, 1)),
                return_exceptions=True,
            )
            held = connections(gateway.workers, gateway.port)
        finally:
            await close(open_channels)
    delivered = [o for o in outcomes if isinstance(o, StreamResult)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(delivered) + len(refused) == len(outcomes), outcomes
    assert all(count > 0 for count in held.values()), f"one worker took all: {held}"
    assert len(delivered) == images, (len(delivered), [e.details() for e in refused])
    assert sum(len(r.images) for r in delivered) == images
    for err in refused:
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
        info = find_detail(err, error_details_pb2.ErrorInfo)
        assert info is not None, err
        assert info.reason == "BUDGET_EXHAUSTED", err
    ledger = await open_ledger(tmp_path)
    try:
        assert await ledger.settled_total("acme") == limit
        (total,) = await ledger.budgets(
            "acme", [BudgetLimit(Period.TOTAL, limit)], now=datetime.now(UTC)
        )
        assert (total.spent_micros, total.reserved_micros, total.remaining_micros) == (limit, 0, 0)
    finally:
        await ledger.close()


async def test_a_port_in_use_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    """Even by a listener that allows sharing it: only our own workers may."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        address = f"127.0.0.1:{other.getsockname()[1]}"
        env = environment(tmp_path, "http://127.0.0.1:9", "unused:", TITAN_GW_LISTEN=address)
        assert await refusal(env) == [f"error: cannot listen on {address}: {ADDRESS_IN_USE}"]
    assert not (tmp_path / "data").exists()  # nothing prepared either


async def test_state_per_process_is_refused(tmp_path: Path) -> None:
    env = environment(tmp_path, "http://127.0.0.1:9", "unused:")
    del env["TITAN_GW_LIMITS_URL"]
    assert await refusal(
        env | {"TITAN_GW_LISTEN": "127.0.0.1:0", "TITAN_GW_BACKEND": "emulator"}
    ) == [
        "error: workers: 2 needs a shared limiter: with limits_url unset each worker would keep "
        "its own in-memory quotas and grant the whole of every rate limit and concurrency "
        "quota; set limits_url: redis://… (TITAN_GW_LIMITS_URL)",
        "error: workers: 2 cannot share listen port 0: each worker would get a port of its "
        "own; give listen a fixed port",
        "error: workers: 2 with backend: emulator would embed an emulator in every worker, "
        "each with its own throttling quota and faults; run one (python -m gateway emulator) "
        "and use backend: bedrock with an endpoint_url (bedrock_endpoint_url)",
    ]
    unix = f"unix:{tmp_path / 'gateway.sock'}"
    [line] = await refusal(env | {"TITAN_GW_LISTEN": unix, "TITAN_GW_LIMITS_URL": REDIS_URL})
    assert line.startswith(f"error: workers: 2 cannot share the unix socket {unix}: "), line


async def test_sigterm_drains_every_worker_and_leaves_nothing_reserved(
    tmp_path: Path, emulator: Emulator, prefix: str
) -> None:
    env = environment(tmp_path, emulator.url, prefix)
    async with serving(env, tmp_path / "serve.log") as gateway:
        emulator.hold()  # every backend call waits: the streams are in flight
        open_channels = channels(gateway.address, 6)
        try:
            calls = [asyncio.ensure_future(generate(c, s)) for s, c in enumerate(open_channels, 1)]
            assert await emulator.wait_in_flight(6, timeout=CALL_S), emulator.stats
            gateway.process.send_signal(signal.SIGTERM)
            assert await gateway.exit_code() == 0, gateway.stderr()
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await close(open_channels)
        assert all(isinstance(o, grpc.aio.AioRpcError) for o in outcomes), outcomes
        assert not [p for p in gateway.workers if alive(p)]
    ledger = await open_ledger(tmp_path)
    try:
        # Cut off after the grace with their Bedrock calls sent: billed (AWS
        # bills invocations it ran), and every reservation released.
        assert await ledger.settled_total("acme") == 6 * PRICE
        (total,) = await ledger.budgets(
            "acme", [BudgetLimit(Period.TOTAL, 10**9)], now=datetime.now(UTC)
        )
        assert total.reserved_micros == 0, total
    finally:
        await ledger.close()


async def test_a_killed_worker_stops_the_others_and_the_parent_fails(
    tmp_path: Path, emulator: Emulator, prefix: str
) -> None:
    env = environment(tmp_path, emulator.url, prefix)
    async with serving(env, tmp_path / "serve.log") as gateway:
        victim, survivor = gateway.workers
        os.kill(victim, signal.SIGKILL)
        assert await gateway.exit_code() == 1
        assert not await until_gone((survivor,)), "the other worker was left running"
        lines = gateway.stderr().splitlines()
        assert (
            f"error: worker 0 of 2 (pid {victim}) was killed by SIGKILL; stopping the other workers"
        ) in lines
        assert sum("draining for up to" in line for line in lines) == 1  # the survivor's stop


async def test_workers_stop_when_the_parent_is_killed(
    tmp_path: Path, emulator: Emulator, prefix: str
) -> None:
    env = environment(tmp_path, emulator.url, prefix)
    async with serving(env, tmp_path / "serve.log") as gateway:
        gateway.process.kill()
        await gateway.exit_code()
        # PR_SET_PDEATHSIG: each worker gets SIGTERM, drains and exits.
        assert not await until_gone(gateway.workers), "orphaned workers"
        assert gateway.stderr().count("draining for up to") == 2


def two_free_ports() -> int:
    """A port P such that P and P + 1 are free (now)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two free ports in a row")


async def test_each_worker_serves_metrics_on_its_own_port(
    tmp_path: Path, emulator: Emulator, prefix: str
) -> None:
    """Worker i on prometheus_port + i: each its own scrape target (a shared
    port would answer each scrape from a random worker's counters)."""
    port = two_free_ports()
    env = environment(tmp_path, emulator.url, prefix, TITAN_GW_TELEMETRY__PROMETHEUS_PORT=str(port))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        assert await refusal(env) == [
            f"error: telemetry.prometheus_port of worker 1: cannot listen on "
            f"127.0.0.1:{port + 1}: {ADDRESS_IN_USE}"
        ]
    async with serving(env, tmp_path / "serve.log") as gateway:
        assert gateway.process.stdout is not None
        lines = [await asyncio.wait_for(gateway.process.stdout.readline(), START_S) for _ in "01"]
        urls = [f"http://127.0.0.1:{port + i}/metrics" for i in (0, 1)]
        assert lines == [f"metrics on {url} (worker {i})\n".encode() for i, url in enumerate(urls)]
        async with aiohttp.ClientSession() as session:
            for url in urls:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=CALL_S)) as answer:
                    assert answer.status == 200, url


def test_each_worker_gets_its_own_service_instance_id() -> None:
    """Worker i's telemetry resource says `<base>-<i>`: OTLP backends tell
    the workers' series apart, the operator's other attributes kept."""
    operators = "deployment.environment=prod,service.instance.id=pod%2F7"
    base = instance_base({"OTEL_RESOURCE_ATTRIBUTES": operators})
    assert base == "pod/7"
    ids = set()
    for index in (0, 1):
        attributes = with_instance_id(operators, f"{base}-{index}")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OTEL_RESOURCE_ATTRIBUTES", attributes)
            resource = Resource.create()
        assert resource.attributes["deployment.environment"] == "prod"
        ids.add(resource.attributes["service.instance.id"])
    assert ids == {"pod/7-0", "pod/7-1"}
    assert instance_base({}) != instance_base({})  # none set: a random one per start
