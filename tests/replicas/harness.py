"""Several gateway processes on one PostgreSQL ledger and one Redis, as deployed.

    async with fresh_database() as ledger_url, redis_prefix() as prefix:
        write_policy(policy, {"acme": TenantSpec(key=KEY, budget={"total_usd": 1})})
        env = stores_env(ledger_url, prefix, policy)
        async with replicas(3, env, workdir=tmp_path) as addresses:
            ...  # addresses: ["127.0.0.1:PORT", ...]; addresses.kill(0) SIGKILLs one

Every replica is a real `python -m gateway serve` subprocess (its own embedded
emulator, its own data dir) started from the repository root with the
`TITAN_GW_*` variables given here only (inherited ones are dropped). Its
stderr goes to `<workdir>/replica-<i>.log`; failures quote its tail.

Everything is bounded: start-up waits for the ready line at most
`START_TIMEOUT_S`, shutdown sends SIGTERM, waits `STOP_TIMEOUT_S`, then
SIGKILLs. The database is dropped (its connections terminated first) and the
Redis keys under the prefix are deleted, even when the test fails. No skips:
PostgreSQL and Redis are required (CI starts them), an unreachable one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis
import yaml
from grpc_status import rpc_status

from gateway.ledger import Ledger, open_ledger
from policies import hash_key, load_policy
from tests.auth import bearer
from tests.streams import StreamResult, collect
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_HOST = "127.0.0.1:5432"
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"

START_TIMEOUT_S = 30.0  # imports + migrations on a busy 2-core machine
STOP_TIMEOUT_S = 10.0  # SIGTERM drain (the harness sets shutdown_grace_s=2)
KILL_TIMEOUT_S = 5.0
STORE_TIMEOUT_S = 15.0
CALL_TIMEOUT_S = 30.0

READY = re.compile(rb"Titan Image Gateway listening on (127\.0\.0\.1:\d+)")
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


# ---------------------------------------------------------------- processes


class ReplicaFailed(RuntimeError):
    """A replica did not come up (its log tail is in the message)."""


@dataclass
class Replica:
    """One `python -m gateway serve` subprocess."""

    index: int
    process: asyncio.subprocess.Process
    log_path: Path
    address: str = ""
    stdout: list[bytes] = field(default_factory=list)
    _drain: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self) -> str:
        """Read stdout up to the ready line; the address it names."""
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                code = await asyncio.wait_for(self.process.wait(), KILL_TIMEOUT_S)
                raise ReplicaFailed(
                    f"replica {self.index} exited with {code} before it was ready; "
                    f"stderr ({self.log_path}):\n{self.log_tail()}"
                )
            self.stdout.append(line)
            if match := READY.search(line):
                self.address = match.group(1).decode()
                self._drain = asyncio.create_task(self._read_rest())
                return self.address

    async def _read_rest(self) -> None:
        # Keep the pipe empty so the replica can never block on a full stdout.
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.stdout.append(line)

    async def kill(self) -> None:
        """SIGKILL (no drain, no cleanup: a crash) and reap it."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), KILL_TIMEOUT_S)
        await self._stop_draining()

    async def stop(self) -> None:
        """SIGTERM, a bounded wait for the drain, then SIGKILL."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)  # a paused one cannot drain
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        await self.kill()

    async def _stop_draining(self) -> None:
        task, self._drain = self._drain, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):  # wait_for cancels it then
            await asyncio.wait_for(task, KILL_TIMEOUT_S)  # EOF follows the exit


class Replicas(list[str]):
    """The replicas' addresses (index i = replica i), plus control over them."""

    def __init__(self, members: Sequence[Replica]) -> None:
        super().__init__(m.address for m in members)
        self.members = list(members)

    async def kill(self, index: int) -> None:
        """Crash replica `index` (SIGKILL) and wait until it is gone."""
        await self.members[index].kill()

    def pause(self, index: int) -> None:
        """Freeze replica `index` (SIGSTOP): its event loop, leases and calls stop."""
        self.members[index].process.send_signal(signal.SIGSTOP)

    def resume(self, index: int) -> None:
        """Let a paused replica run on (SIGCONT)."""
        self.members[index].process.send_signal(signal.SIGCONT)

    def logs(self) -> str:
        """Every replica's stderr tail, for assertion messages."""
        return "\n".join(
            f"--- replica {m.index} ({m.log_path}, exit {m.process.returncode}):\n{m.log_tail()}"
            for m in self.members
        )


def replica_env(env: Mapping[str, str], data_dir: Path) -> dict[str, str]:
    """The process environment: ours, minus any inherited `TITAN_GW_*`, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_GW_")}
    return {
        **base,
        "TITAN_GW_LISTEN": "127.0.0.1:0",
        "TITAN_GW_DATA_DIR": str(data_dir),
        "TITAN_GW_SHUTDOWN_GRACE_S": "2",
        # These tests' requests and prices are Titan v2's (see tests/conftest.py).
        "TITAN_GW_DEFAULT_MODEL_ID": "amazon.titan-image-generator-v2:0",
        # Three replicas racing one tenant's lock on two cores queue for
        # seconds; that is contention, not an outage (tests/stores covers hangs).
        "TITAN_GW_STORE_TIMEOUT_S": str(STORE_TIMEOUT_S),
        **env,
    }


def _make_dirs(workdir: Path, n: int) -> list[Path]:
    """`workdir/replica-<i>`: each replica's own data dir (replicas share no disk)."""
    dirs = [workdir / f"replica-{i}" for i in range(n)]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


async def _spawn(index: int, env: dict[str, str], workdir: Path) -> Replica:
    log_path = workdir / f"replica-{index}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve",
            cwd=REPO_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
    return Replica(index, process, log_path)


async def _start(replica: Replica) -> None:
    try:
        await asyncio.wait_for(replica.wait_ready(), START_TIMEOUT_S)
    except TimeoutError:
        raise ReplicaFailed(
            f"replica {replica.index} printed no ready line within {START_TIMEOUT_S:g}s; "
            f"stdout {replica.stdout!r}; stderr ({replica.log_path}):\n{replica.log_tail()}"
        ) from None


@contextlib.asynccontextmanager
async def replicas(
    n: int,
    env: Mapping[str, str],
    *,
    workdir: Path,
    per_replica: Sequence[Mapping[str, str]] = (),
) -> AsyncIterator[Replicas]:
    """Start `n` gateways with `env` (plus `per_replica[i]` for replica i).

    Yields their addresses once every one printed its ready line; at exit
    every replica still running is stopped (SIGTERM, bounded, then SIGKILL),
    whatever happened inside.
    """
    data_dirs = _make_dirs(workdir, n)
    members: list[Replica] = []
    try:
        for i, data_dir in enumerate(data_dirs):
            extra = per_replica[i] if i < len(per_replica) else {}
            members.append(await _spawn(i, replica_env({**env, **extra}, data_dir), workdir))
        started = await asyncio.gather(*(_start(m) for m in members), return_exceptions=True)
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        yield Replicas(members)
    finally:
        try:
            await asyncio.gather(*(m.stop() for m in members), return_exceptions=True)
        finally:
            for m in members:  # last resort if the awaits above were interrupted
                if m.alive:
                    with contextlib.suppress(ProcessLookupError):
                        m.process.kill()


# ------------------------------------------------------------------- stores


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new PostgreSQL database `replicas_<random>`; its URL. Dropped at exit."""
    name = f"replicas_{secrets.token_hex(6)}"
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for the replica tests ({PG_ADMIN_URL}): {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"', timeout=STORE_TIMEOUT_S)
    finally:
        await conn.close()
    try:
        yield f"postgresql://postgres@{PG_HOST}/{name}"
    finally:
        await _drop_database(name)


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        # A SIGKILLed replica's backends may linger a moment; end them first.
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
            timeout=STORE_TIMEOUT_S,
        )
        await conn.execute(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout=STORE_TIMEOUT_S
        )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def redis_prefix() -> AsyncIterator[str]:
    """A random key prefix (`replicas-<hex>:`); its keys are deleted at exit."""
    prefix = f"replicas-{secrets.token_hex(8)}:"
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        try:
            await client.ping()
        except (OSError, aioredis.RedisError) as exc:
            pytest.fail(f"Redis is required for the replica tests ({REDIS_URL}): {exc}")
        try:
            yield prefix
        finally:
            # no glob specials in the prefix (hex, '-', ':')
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def ledger_client(url: str) -> AsyncIterator[Ledger]:
    """The test's own view of the shared ledger (closed at exit)."""
    ledger = open_ledger(url)
    await asyncio.wait_for(ledger.start(), STORE_TIMEOUT_S)
    try:
        yield ledger
    finally:
        await ledger.close()


def stores_env(ledger_url: str, prefix: str, policy_file: Path, **settings: str) -> dict[str, str]:
    """`TITAN_GW_*` for replicas sharing the ledger, the limits and the policy.

    `settings` are more of them, named without the prefix (`RESERVATION_LEASE_S="2"`).
    """
    return {
        "TITAN_GW_POLICY_FILE": str(policy_file),
        "TITAN_GW_LEDGER_URL": ledger_url,
        "TITAN_GW_LIMITS_URL": REDIS_URL,
        "TITAN_GW_LIMITS_PREFIX": prefix,
        **{f"TITAN_GW_{name}": value for name, value in settings.items()},
    }


# ------------------------------------------------------------------- policy


@dataclass(frozen=True)
class TenantSpec:
    """One tenant of a test policy: its raw key, budget and quotas (README names)."""

    key: str
    budget: Mapping[str, Any] | None = None
    quotas: Mapping[str, Any] | None = None


def write_policy(path: Path, tenants: Mapping[str, TenantSpec]) -> Path:
    """Write a policy with these tenants (one tier with no limits of its own).

    The text is checked with the gateway's own loader first, so a mistake here
    fails the test with the loader's message instead of a replica that will
    not start.
    """
    entries: list[dict[str, Any]] = []
    for tenant_id, spec in tenants.items():
        entry: dict[str, Any] = {"id": tenant_id, "tier": "replicas"}
        entry["api_keys"] = [hash_key(spec.key)]
        if spec.budget is not None:
            entry["budget"] = dict(spec.budget)
        if spec.quotas is not None:
            entry["quotas"] = dict(spec.quotas)
        entries.append(entry)
    document = {"version": 1, "tiers": {"replicas": {}}, "tenants": entries}
    text = yaml.safe_dump(document, sort_keys=False)
    load_policy(text, source=str(path))  # raises PolicyError listing every problem
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ clients


def channel(address: str, key: str) -> grpc.aio.Channel:
    """An insecure grpc.aio channel to one replica sending `key` as bearer."""
    assert address.startswith("127.0.0.1:"), address
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS, interceptors=bearer(key))


def image_service(ch: grpc.aio.Channel) -> image_service_pb2_grpc.ImageServiceStub:
    return image_service_pb2_grpc.ImageServiceStub(ch)


def text_to_image(n: int = 1, seed: int = 1) -> pb.GenerateImagesRequest:
    """n standard-quality 512×512 Titan v2 images (the default model): 8000 µUSD each."""
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox in snow, studio light"),
        config=tasks.ImageGenerationConfig(
            number_of_images=n,
            width=512,
            height=512,
            seed=seed,
            quality=tasks.QUALITY_STANDARD,
        ),
    )


async def generate(
    stub: image_service_pb2_grpc.ImageServiceStub,
    request: pb.GenerateImagesRequest,
    within_s: float = CALL_TIMEOUT_S,
) -> StreamResult:
    """The whole stream of one call (raises AioRpcError if it ends with an error)."""
    return await collect(stub.GenerateImages(request, timeout=within_s))


def describe(err: grpc.aio.AioRpcError) -> str:
    """`CODE: message [detail types]` for assertion messages."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    kinds = [d.TypeName() for d in status.details] if status else []
    return f"{err.code().name}: {err.details()} {kinds}"
