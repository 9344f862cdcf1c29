"""The two child processes of a run — the stand-in backend and the real
gateway pointed at it — started, stopped, and read from /proc so that each
process's CPU and memory is its own and not the caller's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from policies import hash_key

# SD3.5 Large: Titan v2 is past its end of life in the registry, and a
# Stability text-to-image body is the simplest (prompt, ratio, seed, format).
MODEL_ID = "stability.sd3-5-large-v1:0"
# API key per provenance setting of the tenant it belongs to.
KEYS = {"off": "k-bench-plain", "required": "k-bench-marked"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A daily and a monthly budget, as a spend-limited tenant has: the money path
# measured is the real one (reserve against limits, settle into spend windows,
# the budget gauge after each request), never reached in a run.
POLICY = """version: 1
tiers:
  bench:
    budget: {{daily_usd: 1000000, monthly_usd: 10000000}}
tenants:
  - {{id: marked, tier: bench, api_keys: ["{marked}"]}}
  - {{id: plain, tier: bench, api_keys: ["{plain}"], provenance: "off"}}
"""


@dataclass
class Process:
    """A child process: its pid, where it listens, and its CPU and memory."""

    child: asyncio.subprocess.Process
    address: str
    output: Path  # its stdout and stderr

    @property
    def pid(self) -> int:
        return self.child.pid

    def cpu_s(self) -> float:
        """utime + stime of the process and of every process below it (every
        thread of each), in seconds: a gateway with `workers` > 1 is a parent
        and its workers. (The stand-in and a one-process gateway have no children.)"""
        return sum(_cpu_s(pid) for pid in (self.pid, *descendants(self.pid)))

    def rss_kib(self) -> int:
        """Resident memory of the process and every process below it (a gateway
        with `workers` > 1 is a parent and its workers)."""
        return sum(_rss_kib(pid) for pid in (self.pid, *descendants(self.pid)))

    async def stop(self) -> None:
        if self.child.returncode is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.child.wait(), 20)
            except TimeoutError:
                self.child.kill()
                await self.child.wait()


def descendants(pid: int) -> list[int]:
    """The processes below `pid` that are alive now (children first)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # a thread that just ended
            for child in map(int, children.read_text().split()):
                found += [child, *descendants(child)]
    return found


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # it ended since it was listed
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # it ended since it was listed: its time is gone with it
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def connections(pids: list[int], port: int) -> list[int]:
    """How many established TCP connections to `port` each of `pids` holds
    (server side; gRPC's dual-stack sockets list IPv4 peers in tcp6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(f"socket:[{fields[9]}]")
    held = []
    for pid in pids:
        links: set[str] = set()
        with contextlib.suppress(OSError):
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        held.append(len(inodes & links))
    return held


async def spawn(args: list[str], env: dict[str, str], out: Path, ready: str) -> Process:
    """Start `args` with stdout and stderr in `out`, and wait for the line
    beginning with `ready`; its last word is the address."""
    with out.open("wb") as sink:
        child = await asyncio.create_subprocess_exec(*args, env=env, stdout=sink, stderr=sink)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in _text(out).splitlines():
            if line.startswith(ready):
                return Process(child, line.split()[-1], out)
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


def gateway_env(
    tmp: Path, standin: str, settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`_base_env` with `settings` (TITAN_GW_*) over its defaults."""
    return _base_env(tmp, standin) | dict(settings or {})


def _base_env(tmp: Path, standin: str) -> dict[str, str]:
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


async def start_gateway(
    tmp: Path, standin: str, settings: Mapping[str, str] | None = None, name: str = "gateway"
) -> Process:
    """`gateway serve` with `settings` (TITAN_GW_*), its output in `tmp/<name>.out`."""
    args = [sys.executable, "-m", "gateway", "serve"]
    out = tmp / f"{name}.out"
    env = gateway_env(tmp, standin, settings)
    return await spawn(args, env, out, "Titan Image Gateway listening")
