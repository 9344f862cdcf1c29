"""What the parent refuses before it starts more than one worker: settings
under which state kept in each process would break a promise the gateway
makes, and `/metrics` ports already taken.

One line per problem, in the `serve` start-up style (`error: <line>`, exit 2).
"""

from __future__ import annotations

from gateway.settings import Settings, split_listen
from gateway.startup import listen_problem

__all__ = ["metrics_port", "sharing_problems"]

_UNIX = ("unix:", "unix-abstract:")


def sharing_problems(settings: Settings) -> list[str]:
    """Why `settings.workers` processes cannot serve these settings (empty: they can)."""
    if settings.workers == 1:
        return []
    checks = (_limiter, _listen, _backend, _metrics)
    return [problem for check in checks for problem in check(settings)]


def metrics_port(settings: Settings, index: int) -> int | None:
    """Worker `index`'s `/metrics` port: `telemetry.prometheus_port` + index.

    Each worker keeps its own counters, so each is its own scrape target (the
    scraper adds them up); one port shared with SO_REUSEPORT would answer each
    scrape from a random worker and make every counter jump. Port 0 stays 0:
    each worker picks a free one and the parent prints where."""
    port = settings.telemetry.prometheus_port
    if port is None or port == 0:
        return port
    return port + index


def _limiter(settings: Settings) -> list[str]:
    if settings.limits_url not in (None, "memory"):
        return []
    return [
        f"workers: {settings.workers} needs a shared limiter: with limits_url unset each "
        "worker would keep its own in-memory quotas and grant the whole of every rate "
        "limit and concurrency quota; set limits_url: redis://… (TITAN_GW_LIMITS_URL)"
    ]


def _listen(settings: Settings) -> list[str]:
    listen = settings.listen
    if listen.startswith(_UNIX):
        # Checked with grpcio 1.85: a second bind to a unix path unlinks the first
        # worker's socket file (that worker then gets no connection at all), and
        # an abstract name fails with "address in use"; SO_REUSEPORT is for TCP.
        return [
            f"workers: {settings.workers} cannot share the unix socket {listen}: gRPC "
            "cannot bind one unix socket in several processes; listen on host:port"
        ]
    if split_listen(listen)[1] == "0":
        return [
            f"workers: {settings.workers} cannot share listen port 0: each worker would get a "
            "port of its own; give listen a fixed port"
        ]
    return []


def _backend(settings: Settings) -> list[str]:
    if settings.backend != "emulator":
        return []
    return [
        f"workers: {settings.workers} with backend: emulator would embed an emulator in every "
        "worker, each with its own throttling quota and faults; run one (python -m gateway "
        "emulator) and use backend: bedrock with an endpoint_url (bedrock_endpoint_url)"
    ]


def _metrics(settings: Settings) -> list[str]:
    telemetry = settings.telemetry
    if not telemetry.enabled or not metrics_port(settings, 0):
        return []
    last = metrics_port(settings, settings.workers - 1)
    if last is not None and last > 65535:
        return [
            f"workers: {settings.workers} serve /metrics on telemetry.prometheus_port + "
            f"worker index, up to {last}, past the last port (65535)"
        ]
    host = telemetry.prometheus_host
    host = f"[{host}]" if ":" in host else host
    problems = []
    for index in range(settings.workers):
        if (problem := listen_problem(f"{host}:{metrics_port(settings, index)}")) is not None:
            problems.append(f"telemetry.prometheus_port of worker {index}: {problem}")
    return problems
