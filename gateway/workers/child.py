"""One worker process: the ordinary `serve(settings)`, on a port it shares
with its siblings, reporting to the parent once it serves.

Everything else is what a single-process gateway does: its own stores'
connections, event loop, send buffers and provenance threads, and on SIGTERM
the ordered stop of `gateway.server.RunningGateway.stop`. What a worker
changes for itself, before it starts:

- it dies with its parent: Linux sends it SIGTERM when the parent goes, even
  by SIGKILL (`PR_SET_PDEATHSIG`), so it drains and exits instead of serving
  on with nobody to stop it;
- it ignores SIGINT until it serves: the parent decides when to stop (a
  Ctrl-C reaches the whole process group) and forwards SIGTERM;
- its telemetry resource gets a `service.instance.id` of its own, and its
  `/metrics` its own port (see `gateway.workers.checks.metrics_port`).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from urllib.parse import quote, unquote

from gateway.server import RunningGateway, serve
from gateway.settings import Settings
from gateway.startup import EXIT_STARTUP, describe_failure
from gateway.telemetry import configure_logging
from gateway.workers.checks import metrics_port

__all__ = ["Ready", "WorkerSpec", "instance_base", "with_instance_id", "worker_main"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
_INSTANCE_ID = "service.instance.id"


@dataclass(frozen=True)
class WorkerSpec:
    """What the parent hands a worker (pickled by `multiprocessing`)."""

    index: int
    count: int
    parent_pid: int
    settings: Settings
    log_level: str
    instance_base: str


@dataclass(frozen=True)
class Ready:
    """A worker's report that it serves."""

    index: int
    pid: int
    address: str
    metrics_url: str | None


def worker_main(spec: WorkerSpec, ready: Connection) -> None:
    """The target of a worker process; its exit code is the process's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(spec.parent_pid)
    os.environ[_RESOURCE_ATTRIBUTES] = with_instance_id(
        os.environ.get(_RESOURCE_ATTRIBUTES, ""), f"{spec.instance_base}-{spec.index}"
    )
    settings = _own_settings(spec)
    configure_logging(spec.log_level, settings.telemetry.json_logs)
    try:
        asyncio.run(serve(settings, reuse_port=True, on_ready=partial(_report, spec, ready)))
    except Exception as exc:  # what `gateway.startup` would say of it, or a bug
        described = describe_failure(exc, settings)
        if described is None:
            raise
        for line in described:
            print(f"error: worker {spec.index}: {line}", file=sys.stderr, flush=True)
        sys.exit(EXIT_STARTUP)


def instance_base(environ: Mapping[str, str]) -> str:
    """The operator's `service.instance.id` (from OTEL_RESOURCE_ATTRIBUTES), or
    a new random one; worker i's is `<base>-<i>`."""
    for item in environ.get(_RESOURCE_ATTRIBUTES, "").split(","):
        key, _, value = item.partition("=")
        if key.strip() == _INSTANCE_ID and value.strip():
            return unquote(value.strip())
    return str(uuid.uuid4())


def with_instance_id(attributes: str, instance_id: str) -> str:
    """OTEL_RESOURCE_ATTRIBUTES `attributes` with `service.instance.id` set to
    `instance_id` (appended: the SDK reads the list in order, the last wins)."""
    own = f"{_INSTANCE_ID}={quote(instance_id, safe='')}"
    return f"{attributes},{own}" if attributes.strip() else own


def _own_settings(spec: WorkerSpec) -> Settings:
    settings = spec.settings
    port = metrics_port(settings, spec.index)
    telemetry = settings.telemetry.model_copy(update={"prometheus_port": port})
    return settings.model_copy(update={"telemetry": telemetry})


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # it died before the request took effect
        sys.exit(1)


def _report(spec: WorkerSpec, ready: Connection, gateway: RunningGateway) -> None:
    telemetry = gateway.parts.telemetry
    url = telemetry.metrics_url if telemetry is not None else None
    log.info(
        "worker %d of %d (pid %d) serving on %s", spec.index, spec.count, os.getpid(),
        gateway.address,
    )  # fmt: skip
    ready.send(Ready(spec.index, os.getpid(), gateway.address, url))
    ready.close()
