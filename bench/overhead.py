"""Overhead benchmark: what the gateway itself costs per image, as ratios
against calling the backend directly, measured in the same run.

Three processes on loopback: the stand-in backend (`bench.standin`, answers
every InvokeModel at once with a prebuilt 21 KB or 1.39 MB PNG), the real
gateway (`python -m gateway serve`, backend=bedrock pointed at the stand-in,
telemetry on, SQLite ledger) and this one, the caller. Each process's CPU is
read from /proc, so the gateway's CPU per request is its own.

Rows, each cell bounded in time and in requests:
- image x route x concurrency (1/10/64, and 512 for the small image): req/s,
  p50/p99 latency until the caller holds the image bytes, added p50 against
  `direct` (the caller POSTs to the stand-in and decodes JSON and base64
  itself, as a client of Bedrock does), CPU per request of the gateway and
  the stand-in. Two gateway routes: a tenant with provenance off, and one
  with the default (required: every image watermarked and C2PA-signed).
- time to the first image of a 5-image request against a 1-image request.
- many streams: N streams at once against a stand-in that waits before each
  answer: time until all are admitted (their `accepted` event), how many
  were dropped, the gateway's memory per stream, and the p99 latency of a
  health Check meanwhile (the event loop's lag, seen from outside).

`python -m bench.overhead [--quick] [--streams 10000] [--profile]` prints the
tables, writes bench/results/overhead-<date>.json and .png (added p50 vs
concurrency). `--profile` attaches py-spy to the gateway for two cells.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image, ImageDraw, ImageFont

from policies import hash_key
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

# SD3.5 Large: Titan v2 is past its end of life in the registry, and a
# Stability text-to-image body is the simplest (prompt, ratio, seed, format).
MODEL_ID = "stability.sd3-5-large-v1:0"
KEYS = {"off": "k-bench-plain", "required": "k-bench-marked"}
DIRECT = "direct"
ROUTES = {
    DIRECT: None,
    "gateway, provenance off": "off",
    "gateway, provenance required": "required",
}
CONCURRENCY = {"small": (1, 10, 64, 512), "large": (1, 10, 64)}
MAX_REQUESTS = 20_000
# Marking costs 60-450 ms of CPU per image: 512 marked requests in flight
# would only measure a queue, for half a minute.
MARKED_MAX_CONCURRENCY = 64
RESULTS = Path(__file__).resolve().parent / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
POLICY = """version: 1
tiers:
  bench: {{}}
tenants:
  - {{id: marked, tier: bench, api_keys: ["{marked}"]}}
  - {{id: plain, tier: bench, api_keys: ["{plain}"], provenance: "off"}}
"""


# -- processes -----------------------------------------------------------------


@dataclass
class Process:
    """A child process: its pid, where it listens, and its CPU and memory."""

    child: asyncio.subprocess.Process
    address: str

    @property
    def pid(self) -> int:
        return self.child.pid

    def cpu_s(self) -> float:
        """utime + stime of the whole process (every thread), in seconds."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    async def stop(self) -> None:
        if self.child.returncode is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.child.wait(), 20)
            except TimeoutError:
                self.child.kill()
                await self.child.wait()


async def spawn(args: list[str], env: dict[str, str], out: Path, ready: str) -> Process:
    """Start `args` with stdout and stderr in `out`, and wait for the line
    beginning with `ready`; its last word is the address."""
    with out.open("wb") as sink:
        child = await asyncio.create_subprocess_exec(*args, env=env, stdout=sink, stderr=sink)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in _text(out).splitlines():
            if line.startswith(ready):
                return Process(child, line.split()[-1])
        if child.returncode is not None:
            break
        await asyncio.sleep(0.05)
    tail = _text(out)[-2000:]
    with contextlib.suppress(ProcessLookupError):
        child.kill()
    raise RuntimeError(f"{args[2]} did not start:\n{tail}")


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


async def start_standin(tmp: Path, impl: str = "raw") -> Process:
    args = [sys.executable, "-m", "bench.standin", "--impl", impl]
    return await spawn(args, dict(os.environ), tmp / f"standin-{impl}.out", "stand-in listening")


def gateway_env(tmp: Path, standin: str) -> dict[str, str]:
    """The environment of `gateway serve`: ours only, no TITAN_GW_ or OTEL_
    variables of the caller, dummy AWS credentials."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("TITAN_GW_", "OTEL_", "AWS_"))
    }
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY.format(marked=hash_key(KEYS["required"]), plain=hash_key(KEYS["off"])))
    return env | {
        "TITAN_GW_LISTEN": "127.0.0.1:0",
        "TITAN_GW_BACKEND": "bedrock",
        "TITAN_GW_BEDROCK_ENDPOINT_URL": f"http://{standin}",
        "TITAN_GW_DATA_DIR": str(tmp / "data"),
        "TITAN_GW_POLICY_FILE": str(policy),
        "TITAN_GW_PROVENANCE__ALLOW_DEVELOPMENT_CHAIN": "true",
        "TITAN_GW_DEFAULT_MODEL_ID": MODEL_ID,
        "AWS_ACCESS_KEY_ID": "AKIABENCHBENCHBENCH0",
        "AWS_SECRET_ACCESS_KEY": "bench/bench/bench/bench/bench/bench/benc",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


async def start_gateway(tmp: Path, standin: str) -> Process:
    args = [sys.executable, "-m", "gateway", "serve"]
    out = tmp / "gateway.out"
    return await spawn(args, gateway_env(tmp, standin), out, "Titan Image Gateway listening")


async def configure_standin(session: aiohttp.ClientSession, standin: str, **settings: Any) -> None:
    async with session.post(f"http://{standin}/_standin", json=settings) as answer:
        answer.raise_for_status()


def stub(channel: grpc.aio.Channel) -> image_service_pb2_grpc.ImageServiceStub:
    return image_service_pb2_grpc.ImageServiceStub(channel)  # type: ignore[no-untyped-call]


# -- callers -------------------------------------------------------------------

One = Callable[[], Awaitable[float]]  # one request; ms until the caller holds the image


def invoke_body() -> bytes:
    """The body the gateway sends for `image_request()` (one image)."""
    body = {"prompt": "a red fox in snow", "aspect_ratio": "1:1", "seed": 1, "output_format": "png"}
    return json.dumps(body).encode()


def direct_caller(session: aiohttp.ClientSession, standin: str) -> One:
    url = f"http://{standin}/model/{MODEL_ID}/invoke"
    body = invoke_body()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    async def one() -> float:
        start = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as answer:
            payload = await answer.read()
        image = base64.b64decode(json.loads(payload)["images"][0])
        assert image[:4] == b"\x89PNG"
        return (time.perf_counter() - start) * 1000

    return one


def image_request(images: int = 1) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox in snow"),
        config=tasks.ImageGenerationConfig(number_of_images=images, aspect_ratio="1:1"),
    )


def gateway_caller(stub: image_service_pb2_grpc.ImageServiceStub, key: str, images: int = 1) -> One:
    """One GenerateImages stream read to its end; returns ms to the first image."""
    request = image_request(images)
    metadata = (("authorization", f"Bearer {key}"),)

    async def one() -> float:
        start = time.perf_counter()
        first = 0.0
        async for event in stub.GenerateImages(request, metadata=metadata):
            if event.WhichOneof("event") == "image" and not first:
                first = time.perf_counter()
            elif event.WhichOneof("event") == "image_failed":
                raise RuntimeError(f"image failed: {event.image_failed}")
        if not first:
            raise RuntimeError("no image")
        return (first - start) * 1000

    return one


# -- cells ---------------------------------------------------------------------


@dataclass
class Cell:
    """One measured cell; CPU figures are ms per completed request."""

    image: str
    route: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    gateway_cpu_ms: float | None
    standin_cpu_ms: float
    caller_cpu_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return pct(sorted(self.latencies_ms), q)


async def measure(
    one: One, concurrency: int, seconds: float, gateway: Process | None, standin: Process
) -> tuple[list[float], int, float, dict[str, float]]:
    """Run `one` from `concurrency` workers for `seconds` (or MAX_REQUESTS);
    returns latencies, errors, elapsed seconds, CPU seconds used per process."""
    for _ in range(2):  # warm-up: a connection, caches
        await one()
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at and len(latencies) < MAX_REQUESTS:
            try:
                latencies.append(await one())
            except (grpc.aio.AioRpcError, aiohttp.ClientError, RuntimeError):
                errors += 1

    cpu0 = cpu_snapshot(gateway, standin)
    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - begin
    cpu1 = cpu_snapshot(gateway, standin)
    return latencies, errors, elapsed, {k: cpu1[k] - cpu0[k] for k in cpu0}


def cpu_snapshot(gateway: Process | None, standin: Process) -> dict[str, float]:
    times = os.times()
    snapshot = {"caller": times.user + times.system, "standin": standin.cpu_s()}
    if gateway is not None:
        snapshot["gateway"] = gateway.cpu_s()
    return snapshot


async def run_cell(
    image: str, route: str, conc: int, seconds: float, one: One, gw: Process, si: Process
) -> Cell:
    gateway = None if route == DIRECT else gw
    latencies, errors, elapsed, cpu = await measure(one, conc, seconds, gateway, si)
    per = 1000 / max(1, len(latencies))
    gateway_ms = cpu["gateway"] * per if "gateway" in cpu else None
    return Cell(
        image,
        route,
        conc,
        len(latencies),
        errors,
        elapsed,
        latencies,
        gateway_ms,
        cpu["standin"] * per,
        cpu["caller"] * per,
    )


@dataclass
class Bench:
    """The processes and clients of one run."""

    tmp: Path
    standin: Process
    gateway: Process
    session: aiohttp.ClientSession
    channel: grpc.aio.Channel
    options: argparse.Namespace

    @property
    def stub(self) -> image_service_pb2_grpc.ImageServiceStub:
        return stub(self.channel)

    def caller(self, route: str) -> One:
        tenant = ROUTES[route]
        if tenant is None:
            return direct_caller(self.session, self.standin.address)
        return gateway_caller(self.stub, KEYS[tenant])

    async def cells(self) -> list[Cell]:
        cells = []
        for image, levels in CONCURRENCY.items():
            await configure_standin(self.session, self.standin.address, image=image, delay_s=0)
            for conc in levels:
                if conc > self.options.max_concurrency:
                    continue
                for route in ROUTES:
                    if ROUTES[route] == "required" and conc > MARKED_MAX_CONCURRENCY:
                        continue
                    one = self.caller(route)
                    seconds = self.options.seconds
                    cell = await run_cell(
                        image, route, conc, seconds, one, self.gateway, self.standin
                    )
                    cells.append(cell)
                    print(f"  {image} {route} c={conc}: {cell.rate:.0f} req/s", file=sys.stderr)
        return cells

    async def profile(self) -> dict[str, Any]:
        """py-spy on the gateway during small and large c=10, provenance off."""
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if spy is None:
            return {"error": "py-spy is not installed (.venv/bin/pip install py-spy)"}
        profiles: dict[str, Any] = {}
        seconds = max(5.0, self.options.seconds * 2)
        for image in ("small", "large"):
            await configure_standin(self.session, self.standin.address, image=image, delay_s=0)
            raw = self.tmp / f"profile-{image}.txt"
            args = [
                spy,
                "record",
                "--pid",
                str(self.gateway.pid),
                "--duration",
                str(int(seconds) + 1),
                "--rate",
                "250",
                "--nonblocking",
                "--threads",
                "--format",
                "raw",
                "-o",
                str(raw),
            ]
            spy_run = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            await asyncio.sleep(1.0)  # py-spy attaches
            one = self.caller("gateway, provenance off")
            cell = await run_cell(
                image, "gateway, provenance off", 10, seconds, one, self.gateway, self.standin
            )
            output, _ = await spy_run.communicate()
            if not raw.exists():
                profiles[image] = {"error": output.decode(errors="replace")[-600:]}
                continue
            profiles[image] = summarize_profile(raw.read_text()) | {"req_s": cell.rate}
            if self.options.keep_profiles:
                RESULTS.mkdir(exist_ok=True)
                shutil.copy(raw, RESULTS / f"profile-{today()}-{image}-c10.txt")
        return profiles


# -- time to first image -------------------------------------------------------


async def ttfi(bench: Bench, seconds: float, delay_s: float) -> list[dict[str, Any]]:
    """p50 ms to the first image and to the end, 1 vs 5 images, the stand-in
    waiting `delay_s` before each answer (large image)."""
    await configure_standin(bench.session, bench.standin.address, image="large", delay_s=delay_s)
    rows = []
    for tenant in ("off", "required"):
        for images in (1, 5):
            firsts: list[float] = []
            totals: list[float] = []
            one = gateway_caller(bench.stub, KEYS[tenant], images)
            stop_at = time.perf_counter() + seconds
            while (time.perf_counter() < stop_at and len(firsts) < 200) or len(firsts) < 3:
                start = time.perf_counter()
                firsts.append(await one())
                totals.append((time.perf_counter() - start) * 1000)
            rows.append(
                {
                    "provenance": tenant,
                    "images": images,
                    "runs": len(firsts),
                    "first_p50_ms": median(firsts),
                    "all_p50_ms": median(totals),
                }
            )
    await configure_standin(bench.session, bench.standin.address, delay_s=0)
    return rows


# -- many streams --------------------------------------------------------------


@dataclass
class StreamTally:
    """What became of the streams of the many-streams row."""

    expected: int
    begin: float = field(default_factory=time.perf_counter)
    admitted: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    stopping: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    async def hold(self, call: Any) -> None:
        """Read one stream; note its `accepted` event or how it failed."""
        try:
            async for event in call:
                if event.WhichOneof("event") == "accepted":
                    self.admitted.append(time.perf_counter() - self.begin)
                    self._check()
        except grpc.aio.AioRpcError as exc:
            if not self.stopping:  # our own cancel at the end is no drop
                self.failures[exc.code().name] += 1
                self._check()

    def _check(self) -> None:
        if len(self.admitted) + self.failures.total() >= self.expected:
            self.settled.set()


async def many_streams(
    bench: Bench, streams: int, delay_s: float, admit_s: float
) -> dict[str, Any]:
    """`streams` streams opened in one burst against a stand-in that waits
    `delay_s`: admission time, drops, gateway memory per stream, health lag."""
    await configure_standin(bench.session, bench.standin.address, image="small", delay_s=delay_s)
    # Eight connections, as from several clients (channels share one by default).
    options = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(bench.gateway.address, options=options) for _ in range(8)]
    stubs = [stub(c) for c in channels]
    health = health_pb2_grpc.HealthStub(bench.channel)
    idle_lag = await probe(health, 2.0)
    rss0 = bench.gateway.rss_kib()
    request, metadata = image_request(), (("authorization", f"Bearer {KEYS['off']}"),)
    tally = StreamTally(streams)
    calls = [stubs[i % 8].GenerateImages(request, metadata=metadata) for i in range(streams)]
    holders = [asyncio.create_task(tally.hold(call)) for call in calls]
    burst = asyncio.create_task(probe(health, admit_s, until=tally.settled.is_set))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.settled.wait(), admit_s)
    all_in_s = time.perf_counter() - tally.begin
    burst_lag = await burst
    held_lag = await probe(health, max(3.0, bench.options.seconds))
    rss1 = bench.gateway.rss_kib()
    tally.stopping = True
    for call in calls:
        call.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    for channel in channels:
        await channel.close()
    await configure_standin(bench.session, bench.standin.address, delay_s=0)
    held = len(tally.admitted)
    return {
        "streams": streams,
        "standin_delay_s": delay_s,
        "admitted": held,
        "all_admitted_s": all_in_s if held == streams else None,
        "last_admitted_s": max(tally.admitted, default=None),
        "dropped": dict(tally.failures),
        "rss_before_kib": rss0,
        "rss_held_kib": rss1,
        "kib_per_stream": (rss1 - rss0) / held if held else None,
        "health_ms_idle": idle_lag,
        "health_ms_during_burst": burst_lag,
        "health_ms_while_held": held_lag,
    }


async def probe(
    health: health_pb2_grpc.HealthStub, seconds: float, until: Callable[[], bool] | None = None
) -> dict[str, float]:
    """p50/p99/max ms of a health Check sent every 10 ms (the gateway's loop lag
    as a caller sees it, including this process's own lag)."""
    times: list[float] = []
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at and not (until and until()):
        start = time.perf_counter()
        await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
        times.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.01)
    return percentiles(times)


# -- the run -------------------------------------------------------------------


async def standin_choice(tmp: Path, seconds: float) -> list[Cell]:
    """Direct small-image c=10 against each stand-in server: its CPU per answer."""
    cells = []
    for impl in ("raw", "aiohttp"):
        standin = await start_standin(tmp, impl)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                one = direct_caller(session, standin.address)
                cells.append(
                    await run_cell(
                        "small", f"direct ({impl} stand-in)", 10, seconds, one, standin, standin
                    )
                )
        finally:
            await standin.stop()
    return cells


async def run(options: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as name:
        tmp = Path(name)
        choice = await standin_choice(tmp, min(options.seconds, 2.0))
        standin = await start_standin(tmp)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                result = await with_gateway(tmp, standin, session, options, rows)
                if options.streams:
                    # A fresh gateway: memory the cells freed would hide the streams' own.
                    result |= await with_gateway(tmp, standin, session, options, stream_rows)
        finally:
            await standin.stop()
    result["standin_choice"] = [cell_dict(c) for c in choice]
    result["machine"] = machine()
    result["settings"] = dict(vars(options))
    result["run_s"] = time.perf_counter() - started
    return result


async def with_gateway(
    tmp: Path,
    standin: Process,
    session: aiohttp.ClientSession,
    options: argparse.Namespace,
    work: Callable[[Bench], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """`work` against a gateway of its own, stopped afterwards."""
    gateway = await start_gateway(tmp, standin.address)
    try:
        async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as channel:
            return await work(Bench(tmp, standin, gateway, session, channel, options))
    finally:
        await gateway.stop()


async def rows(bench: Bench) -> dict[str, Any]:
    result: dict[str, Any] = {"cells": [cell_dict(c) for c in await bench.cells()]}
    result["ttfi"] = await ttfi(bench, bench.options.seconds, 0.1)
    if bench.options.profile:
        result["profile"] = await bench.profile()
    return result


async def stream_rows(bench: Bench) -> dict[str, Any]:
    await configure_standin(bench.session, bench.standin.address, image="small", delay_s=0)
    await measure(bench.caller("gateway, provenance off"), 10, 0.5, None, bench.standin)  # warm
    options = bench.options
    return {
        "streams": await many_streams(
            bench, options.streams, options.stream_delay, options.admit_timeout
        )
    }


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_avg_at_end": os.getloadavg(),
    }


# -- figures -------------------------------------------------------------------


def today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "p50": pct(ordered, 0.5), "p99": pct(ordered, 0.99),
            "max": pct(ordered, 1.0)}  # fmt: skip


def pct(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank); NaN when there are none."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cell_dict(cell: Cell) -> dict[str, Any]:
    row = {k: v for k, v in asdict(cell).items() if k != "latencies_ms"}
    return row | {"req_s": cell.rate, "p50_ms": cell.pct(0.5), "p99_ms": cell.pct(0.99)}


def with_added(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each cell with `added_p50_ms` and `vs_direct` (throughput ratio)."""
    direct = {(c["image"], c["concurrency"]): c for c in cells if c["route"] == DIRECT}
    for c in cells:
        base = direct.get((c["image"], c["concurrency"]))
        c["added_p50_ms"] = c["p50_ms"] - base["p50_ms"] if base else None
        c["vs_direct"] = c["req_s"] / base["req_s"] if base and base["req_s"] else None
    return cells


def summarize_profile(raw: str, top: int = 15) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks -> % of busy samples per thread, per
    package and per function on top of the stack (self), and the gateway's
    own functions anywhere in the stack (inclusive). Time in C code (grpc's
    Cython core, zlib, SQLite) counts against the Python frame that called it."""
    threads: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        threads[frames[0].partition(": ")[2] or frames[0]] += count
        leaf = frames[-1] if len(frames) > 1 else "(idle) (?)"
        packages[_package(leaf)] += count
        own[_function(leaf)] += count
        for name in {_function(f) for f in frames[1:] if _ours(f)}:
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, 100 * n / max(1, total)) for name, n in counter.most_common(top)]

    return {"samples": total, "threads": share(threads), "packages": share(packages),
            "self": share(own), "inclusive_gateway": share(inclusive)}  # fmt: skip


def _function(frame: str) -> str:
    """ "decode (json/decoder.py:337)" -> "decode (json/decoder.py)"."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rstrip(')').rpartition(':')[0] or where.rstrip(')')})"


def _package(frame: str) -> str:
    """ "decode (json/decoder.py:337)" -> "json"; "<frozen runpy>" -> "runpy"."""
    where = frame.partition(" (")[2].rstrip(")").lstrip("<").removeprefix("frozen ")
    return where.split("/")[0].split(":")[0].removesuffix(".py").rstrip(">") or "?"


# The frames every stack starts with: not where the time goes.
_WRAPPERS = ("gateway/__main__.py", "gateway/cli/", "gateway/startup.py")


def _ours(frame: str) -> bool:
    where = frame.partition(" (")[2]
    return where.startswith(("gateway/", "policies/")) and not where.startswith(_WRAPPERS)


def targets(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured with provenance off, with provenance required, met) rows."""
    cells = {(c["image"], c["route"], c["concurrency"]): c for c in result["cells"]}

    def figure(image: str, conc: int, key: str) -> tuple[float | None, float | None]:
        got = [cells.get((image, route, conc), {}).get(key) for route in list(ROUTES)[1:]]
        return got[0], got[1]

    rows = []
    checks = [
        ("gateway CPU/request, 21 KB, c=10", "small", 10, "gateway_cpu_ms", 1.0, " ms"),
        ("gateway CPU/request, 1.39 MB, c=10", "large", 10, "gateway_cpu_ms", 3.0, " ms"),
        ("added p50, 21 KB, c=1", "small", 1, "added_p50_ms", 0.5, " ms"),
        ("added p50, 21 KB, c=10", "small", 10, "added_p50_ms", 4.0, " ms"),
    ]
    for name, image, conc, key, limit, unit in checks:
        off, req = figure(image, conc, key)
        rows.append(
            (
                f"{name} <= {limit:g}{unit}",
                _fmt(off, unit),
                _fmt(req, unit),
                None if off is None else off <= limit,
            )
        )
    for image in ("small", "large"):
        off, req = figure(image, 64, "vs_direct")
        rows.append(
            (
                f"throughput at c=64 >= 50 % of direct, {image}",
                _fmt(off, "x"),
                _fmt(req, "x"),
                None if off is None else off >= 0.5,
            )
        )
    return rows + stream_targets(result.get("streams"))


def stream_targets(s: dict[str, Any] | None) -> list[tuple[str, str, str, bool | None]]:
    if not s:
        return []
    n = s["streams"]
    within = s["all_admitted_s"]
    lag = s["health_ms_while_held"]["p99"]
    dropped = sum(s["dropped"].values())
    per = s["kib_per_stream"]
    return [
        (
            f"{n:,} streams all admitted within 10 s",
            _fmt(within, " s")
            if within
            else f"{s['admitted']:,} admitted, the last at {_fmt(s['last_admitted_s'], ' s')}",
            "",
            within is not None and within <= 10,
        ),
        (
            f"{n:,} streams: none dropped",
            f"{dropped:,} dropped {s['dropped'] or ''}",
            "",
            dropped == 0,
        ),
        (
            "< 50 KB of gateway memory per stream",
            _fmt(per, " KiB"),
            "",
            per is not None and per < 50,
        ),
        ("loop lag p99 < 10 ms (health Check p99 while held)", _fmt(lag, " ms"), "", lag < 10),
    ]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}{unit}" if abs(value) < 10 else f"{value:,.0f}{unit}"


# -- output --------------------------------------------------------------------


def print_all(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(
        f"{m['nproc']} cores, {m['cpu']}, Python {m['python']}, grpcio {m['grpcio']}, "
        f"{m['date']}; loopback, stand-in backend, telemetry on, SQLite ledger\n"
    )
    print(
        "| image | route | conc | req/s | p50 ms | p99 ms | added p50 | vs direct "
        "| gateway CPU/req | stand-in CPU/req | caller CPU/req | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    label = {"small": "21 KB PNG", "large": "1.39 MB PNG"}
    for c in with_added(result["cells"]):
        added = "—" if c["route"] == DIRECT else f"{c['added_p50_ms']:+.1f} ms"
        ratio = "—" if c["route"] == DIRECT else f"{c['vs_direct']:.2f}x"
        print(
            f"| {label[c['image']]} | {c['route']} | {c['concurrency']} | {c['req_s']:,.0f} "
            f"| {c['p50_ms']:.1f} | {c['p99_ms']:.1f} | {added} | {ratio} "
            f"| {_fmt(c['gateway_cpu_ms'], ' ms')} | {c['standin_cpu_ms']:.2f} ms "
            f"| {c['caller_cpu_ms']:.2f} ms | {c['errors']} |"
        )
    print("\n| stand-in server (direct, 21 KB, c=10) | req/s | p50 ms | its CPU/answer |")
    print("|---|---:|---:|---:|")
    for c in result["standin_choice"]:
        print(
            f"| {c['route']} | {c['req_s']:,.0f} | {c['p50_ms']:.2f} "
            f"| {c['standin_cpu_ms']:.3f} ms |"
        )
    print_ttfi(result["ttfi"])
    if result.get("streams"):
        print_streams(result["streams"])
    print("\n| target (issue 12) | provenance off | provenance required | met |")
    print("|---|---:|---:|---|")
    for name, off, req, met in targets(result):
        print(f"| {name} | {off} | {req} | {'—' if met is None else 'yes' if met else 'NO'} |")
    if result.get("profile"):
        print_profile(result["profile"])


def print_ttfi(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| provenance | images | p50 ms to first image | p50 ms to the end | first vs 1 image |"
    )
    print("|---|---:|---:|---:|---:|")
    one = {r["provenance"]: r["first_p50_ms"] for r in rows if r["images"] == 1}
    for r in rows:
        print(
            f"| {r['provenance']} | {r['images']} | {r['first_p50_ms']:.1f} "
            f"| {r['all_p50_ms']:.1f} | {r['first_p50_ms'] / one[r['provenance']]:.2f}x |"
        )
    print("(1.39 MB image, stand-in waits 100 ms per answer, one request at a time)")


def print_streams(s: dict[str, Any]) -> None:
    within = _fmt(s["all_admitted_s"], " s") if s["all_admitted_s"] else "not all"
    last = _fmt(s["last_admitted_s"], " s")
    per = _fmt(s["kib_per_stream"], " KiB")
    print(
        "\n| many streams | admitted | all admitted in | last admitted at | dropped "
        "| RSS held | per stream "
        "| health p50/p99 idle | during burst | while held |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    lag = [s[k] for k in ("health_ms_idle", "health_ms_during_burst", "health_ms_while_held")]
    lags = " | ".join(f"{x['p50']:.1f} / {x['p99']:.1f} ms" for x in lag)
    print(
        f"| {s['streams']:,} (stand-in waits {s['standin_delay_s']:g} s) | {s['admitted']:,} "
        f"| {within} | {last} | {s['dropped'] or 'none'} | {s['rss_held_kib'] / 1024:,.0f} MiB "
        f"| {per} | {lags} |"
    )


def print_profile(profiles: dict[str, Any]) -> None:
    for image, p in profiles.items():
        if "error" in p:
            print(f"\nprofile {image}: {p['error']}")
            continue
        print(f"\nprofile, {image} image, c=10, provenance off ({p['samples']:,} busy samples, "
              f"{p['req_s']:.0f} req/s while py-spy sampled)")  # fmt: skip
        for title in ("threads", "packages"):
            print(f"{title}: " + ", ".join(f"{n} {pct:.0f} %" for n, pct in p[title][:8]))
        print("\n| self % | function (top of stack) | gateway function | inclusive % |")
        print("|---:|---|---|---:|")
        for (sn, sp), (inn, ip) in zip(p["self"], p["inclusive_gateway"], strict=False):
            print(f"| {sp:.1f} | {sn} | {inn} | {ip:.1f} |")


def write(result: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"overhead-{today()}"
    json_path, png_path = stem.with_suffix(".json"), stem.with_suffix(".png")
    json_path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    plot(result, png_path)
    return json_path, png_path


PLOT_COLOURS = {
    ("small", "off"): (31, 119, 180),
    ("small", "required"): (174, 199, 232),
    ("large", "off"): (214, 39, 40),
    ("large", "required"): (255, 152, 150),
}


def plot(result: dict[str, Any], path: Path) -> None:
    """Added p50 (log) against concurrency (log), one line per image x route."""
    width, height, left, top, right, bottom = 900, 560, 80, 50, 250, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    cells = with_added(result["cells"])
    levels = sorted({c["concurrency"] for c in cells})
    lo, hi = 0.1, 100_000.0

    def x(conc: int) -> float:
        span = math.log(max(levels) / min(levels)) or 1
        return left + (width - left - right) * math.log(conc / min(levels)) / span

    def y(ms: float) -> float:
        ms = min(max(ms, lo), hi)
        return height - bottom - (height - top - bottom) * math.log(ms / lo) / math.log(hi / lo)

    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    for ms in (0.1, 1, 10, 100, 1000, 10_000, 100_000):
        draw.line((left, y(ms), width - right, y(ms)), fill=(225, 225, 225))
        draw.text((left - 8, y(ms)), f"{ms:g}", fill="black", font=font, anchor="rm")
    for conc in levels:
        draw.text((x(conc), height - bottom + 8), str(conc), fill="black", font=font, anchor="mt")
    draw.text(
        (width / 2 - right / 2, height - 32), "concurrency", fill="black", font=font, anchor="mm"
    )
    draw.text(
        (left, 20), "added p50 latency vs direct to the stand-in (ms, log)", fill="black", font=font
    )
    for n, ((img, tenant), colour) in enumerate(PLOT_COLOURS.items()):
        route = next(r for r, t in ROUTES.items() if t == tenant)
        points = [
            (x(c["concurrency"]), y(c["added_p50_ms"]))
            for c in cells
            if c["image"] == img and c["route"] == route and c["added_p50_ms"] is not None
        ]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3)
        for px, py in points:
            draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour)
        ly = top + 20 + 22 * n
        draw.line((width - right + 15, ly, width - right + 45, ly), fill=colour, width=3)
        name = f"{'21 KB' if img == 'small' else '1.39 MB'}, provenance {tenant}"
        draw.text((width - right + 52, ly), name, fill="black", font=font, anchor="lm")
    for conc, ms in ((1, 0.5), (10, 4.0)):  # the targets, 21 KB
        if conc in levels:
            cx, cy = x(conc), y(ms)
            draw.line((cx - 6, cy - 6, cx + 6, cy + 6), fill="black", width=2)
            draw.line((cx - 6, cy + 6, cx + 6, cy - 6), fill="black", width=2)
    draw.text(
        (width - right + 15, top + 20 + 22 * 4),
        "x  target (21 KB)",
        fill="black",
        font=font,
        anchor="lm",
    )
    note = "points on the 0.1 line: added <= 0.1 ms (the direct caller decodes in Python too)"
    draw.text((left, height - 8), note, fill=(90, 90, 90), font=font, anchor="ls")
    image.save(path, optimize=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per cell")
    parser.add_argument("--quick", action="store_true", help="1 s cells, 500 streams, no c=512")
    parser.add_argument("--streams", type=int, default=2000, help="many-streams row (0: skip)")
    parser.add_argument("--stream-delay", type=float, default=30.0, help="stand-in wait, s")
    parser.add_argument("--admit-timeout", type=float, default=60.0, help="longest wait, s")
    parser.add_argument("--max-concurrency", type=int, default=512)
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway at c=10")
    parser.add_argument(
        "--keep-profiles", action="store_true", help="copy py-spy stacks to results/"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; no JSON or PNG")
    options = parser.parse_args(argv)
    if options.quick:
        options.seconds, options.streams, options.max_concurrency = (
            1.0,
            min(options.streams, 500),
            64,
        )
    return options


def bench_main(options: argparse.Namespace) -> None:
    result = asyncio.run(run(options))
    print_all(result)
    if not options.no_write:
        json_path, png_path = write(result, RESULTS)
        print(f"\nwrote {json_path} and {png_path} ({result['run_s']:.0f} s in all)")


def run_bench(seconds: float) -> None:
    """`python -m bench overhead`: the default rows with `seconds` per cell."""
    bench_main(parse_args(["--seconds", str(seconds)]))


if __name__ == "__main__":
    bench_main(parse_args())
