"""Start-up for `python -m gateway serve`: refuse clearly, never half-start.

Every problem found before the gateway serves (a bad or unknown setting, an
unreadable or invalid policy file, the published dev policy where its keys
are a risk, a listen address in use, a missing or non-PEM TLS file) is
printed as ONE line on stderr, ``error: <what>: <why>``, and the process
exits with `EXIT_STARTUP` (2) without a traceback. Anything else still
raises: it is a bug, not a configuration problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import errno
import os
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.provenance.settings import signing_problems
from gateway.registry import RegistryError
from gateway.settings import (
    Settings,
    SettingsError,
    load_settings,
    read_config_file,
    setting_paths,
    split_listen,
    variable_name,
)
from gateway.tls import TlsError, tls_problems
from policies import PolicyError

__all__ = [
    "EXIT_STARTUP",
    "ListenError",
    "StartupError",
    "listen_problem",
    "load",
    "policy_file_problems",
    "run",
    "validation_problems",
]

EXIT_STARTUP = 2


class StartupError(Exception):
    """The gateway must not start; `problems` holds one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        # One problem, one line: a reason that spans lines is joined.
        self.problems: tuple[str, ...] = tuple(" ".join(p.split("\n")) for p in problems)
        super().__init__("\n".join(self.problems))


class ListenError(OSError):
    """The gateway cannot listen on its address; the message says why."""

    @classmethod
    def for_address(cls, listen: str) -> ListenError:
        """The error for a failed bind of `listen`, with the reason when one is found."""
        return cls(listen_problem(listen) or f"cannot listen on {listen}")


def run(config_file: Path | None, *, log_level: str = "INFO", verbose: bool = False) -> int:
    """`serve`: load, check, then serve until SIGINT/SIGTERM. Returns the exit code.

    With `workers` > 1 the checks also cover what worker processes cannot
    share, and this process then supervises them (`gateway.workers`)."""
    try:
        return _run(config_file, log_level=log_level, verbose=verbose)
    except StartupError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr, flush=True)
        return EXIT_STARTUP


def _run(config_file: Path | None, *, log_level: str, verbose: bool) -> int:
    from gateway.server import serve
    from gateway.telemetry import configure_logging

    settings = load(config_file)
    problems = policy_file_problems(settings.policy_file)
    problems += tls_problems(settings.tls)
    problems += signing_problems(settings.provenance, settings.backend)
    if (problem := listen_problem(settings.listen)) is not None:
        problems.append(problem)
    if settings.workers > 1:
        from gateway.workers import sharing_problems

        problems += sharing_problems(settings)
    if problems:
        raise StartupError(problems)
    if verbose:
        telemetry = settings.telemetry.model_copy(update={"console": True})
        settings = settings.model_copy(update={"telemetry": telemetry})
    configure_logging(log_level, settings.telemetry.json_logs)
    try:
        if settings.workers > 1:  # this process supervises; the workers serve
            from gateway.workers import supervise

            return supervise(settings, log_level=log_level)
        asyncio.run(serve(settings))
    except (PolicyError, RegistryError, TlsError, OSError, RuntimeError) as exc:
        described = describe_failure(exc, settings)
        if described is None:
            raise
        raise StartupError(described) from exc
    return 0


def load(config_file: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """`load_settings(config_file)`, its failures as a `StartupError`."""
    try:
        return load_settings(config_file)
    except SettingsError as exc:
        raise StartupError(exc.problems) from exc
    except ValidationError as exc:
        env = os.environ if environ is None else environ
        raise StartupError(validation_problems(exc, config_file, env)) from exc


def validation_problems(
    exc: ValidationError, config_file: Path | None, environ: Mapping[str, str]
) -> list[str]:
    """One line per error: the setting, pydantic's reason, and where the value came from."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        with contextlib.suppress(SettingsError):
            file_values = read_config_file(config_file)
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"] if part != "[key]")
        cause = (error.get("ctx") or {}).get("error")
        if not loc:  # the whole object's checks: the registry, the dev policy
            if isinstance(cause, RegistryError):
                problems.append(f"model registry: {cause}")
            else:
                problems.append(str(cause) if isinstance(cause, Exception) else error["msg"])
            continue
        name = ".".join(loc)
        if error["type"] == "extra_forbidden":
            problem = f"unknown setting {name}"
            known = [".".join(path) for path in setting_paths(Settings)]
            if close := difflib.get_close_matches(name, known, n=1):
                problem += f" (did you mean {close[0]}?)"
        else:
            problem = f"setting {name}: {error['msg']}"
        source = _source(loc, environ, config_file, file_values)
        problems.append(f"{problem} (from {source})" if source else problem)
    return problems


def _source(
    loc: Sequence[str],
    environ: Mapping[str, str],
    config_file: Path | None,
    file_values: Mapping[str, Any],
) -> str | None:
    """Which variable or file set the value at `loc` (the environment beats the file)."""
    variables = {name.upper(): name for name in environ}
    for end in range(len(loc), 0, -1):  # TITAN_GW_EMULATOR__LATENCY_MS, then TITAN_GW_EMULATOR
        if (name := variables.get(variable_name(loc[:end]))) is not None:
            return name
    if config_file is not None and loc[0].lower() in {str(k).lower() for k in file_values}:
        return str(config_file)
    return None


def policy_file_problems(path: Path) -> list[str]:
    """Whether the policy file can be read as text at all (its content is the
    loader's to judge, when the gateway starts)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [f"policy file {path}: {exc.strerror or exc}"]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"policy file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    return []


def listen_problem(listen: str) -> str | None:
    """Why the gateway cannot listen on `listen`, found by binding a socket there
    the way gRPC does (SO_REUSEADDR, dual-stack IPv6) but without SO_REUSEPORT,
    so a port another process listens on counts as taken even if that process
    allows sharing it. None when it can (or when only gRPC can tell: port 0,
    unix sockets, an unparsable address)."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return None
    host, port_text = split_listen(listen)
    try:
        port = int(port_text)
    except ValueError:
        return None
    if port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot listen on {listen}: {getattr(exc, 'strerror', None) or exc}"
    failures: list[OSError] = []
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    with contextlib.suppress(OSError):
                        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"cannot listen on {listen}: address already in use (by another process)"
            failures.append(exc)
    if failures and len(failures) == len(addresses):  # gRPC needs one address to bind
        return f"cannot listen on {listen}: {failures[0].strerror or failures[0]}"
    return None


def describe_failure(exc: BaseException, settings: Settings) -> list[str] | None:
    """The lines for a start-up failure the operator can fix, or None (a bug)."""
    if isinstance(exc, PolicyError):
        return [str(problem) for problem in exc.problems] or [str(exc)]
    if isinstance(exc, RegistryError):
        return [f"model registry: {exc}"]
    if isinstance(exc, TlsError):
        return [str(exc)]
    if isinstance(exc, OSError) and getattr(exc, "filename", None) == str(settings.policy_file):
        return [f"policy file {settings.policy_file}: {exc.strerror or exc}"]
    if isinstance(exc, ListenError):
        return [str(exc)]
    message = str(exc)
    if "Failed to bind" in message or "cannot listen on" in message:
        return [listen_problem(settings.listen) or f"cannot listen on {settings.listen}: {exc}"]
    return None
