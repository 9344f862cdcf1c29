"""One validated settings object, from a config file and the environment.

Precedence (highest first): environment variables `TITAN_GW_*` (nested with
`__`, e.g. `TITAN_GW_EMULATOR__LATENCY_MS=50`), then the YAML config file
named by `TITAN_GW_CONFIG` or `--config`, then the defaults below; values
given to `load_settings` itself (tests, CLI flags) beat all three. Unknown
keys are errors wherever they come from: a `TITAN_GW_*` variable that names no
setting (and is none of `NON_SETTING_VARIABLES`) is refused, not ignored. AWS
credentials are never read from here: the standard AWS chain supplies them.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.alerts.settings import AlertSettings
from gateway.enums import TaskType
from gateway.provenance.settings import ProvenanceSettings
from gateway.registry import ModelRegistry, load_registry
from gateway.settings.addresses import DEV_POLICY, is_dev_policy, is_loopback, split_listen
from gateway.settings.sections import EmulatorSettings, TelemetrySettings, TlsSettings

__all__ = [
    "DEV_POLICY",
    "ENV_PREFIX",
    "NON_SETTING_VARIABLES",
    "DevPolicyRefused",
    "EmulatorSettings",
    "Settings",
    "SettingsError",
    "TelemetrySettings",
    "TlsSettings",
    "check_environment",
    "is_dev_policy",
    "is_loopback",
    "load_settings",
    "read_config_file",
    "setting_paths",
    "split_listen",
    "unknown_variable_problem",
    "variable_name",
]

ENV_PREFIX = "TITAN_GW_"
# `TITAN_GW_*` variables the gateway reads that are not settings. Every other
# variable with the prefix must name a setting. Reading a new one anywhere
# means adding it here (tests/test_settings.py checks the sources).
NON_SETTING_VARIABLES = frozenset(
    {
        "TITAN_GW_CONFIG",  # the config file (`serve`, `policy explain`)
        "TITAN_GW_TARGET",  # the CLI client's gateway address
        "TITAN_GW_API_KEY",  # the CLI client's tenant key
        "TITAN_GW_ADMIN_KEY",  # the CLI client's admin key
        "TITAN_GW_TLS_CA",  # the CLI client's CA bundle to verify the gateway
        "TITAN_GW_TLS_CERT",  # the CLI client's certificate chain (mutual TLS)
        "TITAN_GW_TLS_KEY",  # the CLI client's private key (mutual TLS)
    }
)
MIB = 1024 * 1024


class SettingsError(ValueError):
    """Settings cannot be loaded; `problems` holds one line per problem.

    (A value that breaks a field's rules is a pydantic `ValidationError`.)
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class DevPolicyRefused(ValueError):
    """The published dev policy would serve where its public keys are a risk."""


class Settings(BaseSettings):
    """Every gateway setting; the README's settings table mirrors this class."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    listen: str = Field("127.0.0.1:50051", description="gRPC listen address host:port")
    backend: Literal["emulator", "bedrock"] = "emulator"
    bedrock_region: str = "us-east-1"
    bedrock_endpoint_url: str | None = None
    registry_file: Path | None = Field(
        None,
        description="the model registry YAML; default: the shipped gateway/registry/models.yaml",
    )
    default_models: dict[TaskType, str] = Field(
        default_factory=dict, description="per-task default model ids, over the registry's"
    )
    default_model_id: str | None = Field(
        None, description="one model as the default of every task it can run"
    )
    backend_concurrency: int = Field(16, ge=1, le=1024)
    backend_max_attempts: int = Field(4, ge=1, le=10)
    backend_max_connections: int = Field(64, ge=1, le=1024)
    default_timeout_s: float = Field(300.0, gt=0)
    data_dir: Path = Path("var")
    policy_file: Path = Field(
        default_factory=lambda: DEV_POLICY, description="the policy YAML (tenants, keys, rules)"
    )
    policy_poll_s: float = Field(1.0, gt=0, description="how often to check the file for changes")
    ledger_url: str | None = Field(
        None, description="sqlite:///path or postgresql://…; default sqlite under data_dir"
    )
    limits_url: str | None = Field(None, description="redis://…; default in-memory (one replica)")
    limits_prefix: str = Field("tgw:", description="Redis key prefix (gateways sharing one Redis)")
    reservation_lease_s: float = Field(
        30.0, gt=0, description="budget reservations and concurrency slots expire unless renewed"
    )
    store_timeout_s: float = Field(
        5.0,
        gt=0,
        description="longest wait for one ledger or limiter call; past it the call fails "
        "UNAVAILABLE, the store is marked down and health turns NOT_SERVING",
    )
    store_probe_interval_s: float = Field(
        1.0,
        gt=0,
        description="while a store is down, how often one cheap read checks it "
        "(health turns SERVING again when it answers)",
    )
    send_buffer_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="finished images not yet written to their callers, all streams together; "
        "past it no new backend call starts",
    )
    stream_buffer_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024 * 1024,
        description="the same for one stream: a reader that stops reading holds at most this",
    )
    global_images_per_minute: int | None = Field(
        None, gt=0, description="cap across all tenants (stay under the Bedrock account quota)"
    )
    shutdown_grace_s: float = Field(10.0, ge=0)
    max_pending_requests: int = Field(
        10_000,
        ge=1,
        description=(
            "calls grpc-core may hold before the gateway's code takes them "
            "(grpc.server.max_pending_requests; twice this is the hard limit). gRPC's "
            "default, 1,000, cancels calls at random in a burst above it"
        ),
    )
    workers: int = Field(
        1,
        ge=1,
        le=256,
        description=(
            "gateway processes sharing the listen port (SO_REUSEPORT): 1 serves in this "
            "process; more makes this process a supervisor that starts, watches and stops "
            "that many workers (gateway/workers/). Per-process limits apply per worker"
        ),
    )
    max_receive_message_bytes: int = Field(
        40 * MIB,
        ge=1 * MIB,
        le=64 * MIB,
        description=(
            "largest request message the server accepts (grpc.max_receive_message_length); "
            "larger ones are refused by gRPC before they are parsed"
        ),
    )
    allow_dev_policy: bool = Field(
        False,
        description=(
            "serve the published dev policy on a non-loopback address or against real Bedrock"
        ),
    )
    emulator: EmulatorSettings = Field(default_factory=EmulatorSettings)  # type: ignore[arg-type]
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)  # type: ignore[arg-type]
    tls: TlsSettings = Field(default_factory=TlsSettings)  # type: ignore[arg-type]
    alerts: AlertSettings = AlertSettings()
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _registry_loads(self) -> Settings:
        self.registry()  # a bad registry file or default fails at load, not per request
        return self

    @model_validator(mode="after")
    def _dev_policy_stays_local(self) -> Settings:
        if self.allow_dev_policy:
            return self
        reasons = []
        if not is_loopback(self.listen):
            reasons.append(f"on the non-loopback address {self.listen}")
        if self.backend == "bedrock":
            reasons.append("against real Bedrock (backend: bedrock)")
        if reasons and is_dev_policy(self.policy_file):
            raise DevPolicyRefused(
                f"policy_file {self.policy_file} is the published dev policy, whose keys are "
                f"public in the README: refusing to serve it {' and '.join(reasons)}; point "
                "policy_file at your own policy, or set allow_dev_policy: true "
                f"({ENV_PREFIX}ALLOW_DEV_POLICY=true) to serve it anyway"
            )
        return self

    def ledger_location(self) -> str:
        """The ledger URL: `ledger_url`, or a SQLite file in `data_dir`."""
        if self.ledger_url:
            return self.ledger_url
        return f"sqlite:///{self.data_dir / 'ledger.db'}"

    def registry(self) -> ModelRegistry:
        """The model registry these settings describe."""
        return load_registry(self.registry_file, self.default_models, self.default_model_id)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Init kwargs (`load_settings` overrides) beat the environment, which
        # beats the config file (see `load_settings`), which beats the defaults.
        # Sources are merged deeply: a nested value replaces only itself.
        file_settings = InitSettingsSource(settings_cls, dict(_CONFIG_FILE_VALUES.get()))
        return (init_settings, env_settings, file_settings)


# The config file's values while `load_settings` builds a Settings object.
_CONFIG_FILE_VALUES: ContextVar[Mapping[str, Any]] = ContextVar(
    "_CONFIG_FILE_VALUES", default=types.MappingProxyType({})
)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `config_file` (YAML), the environment, then `overrides`.

    `overrides` (used by tests and CLI flags) beat everything else. Raises
    `SettingsError` for an unreadable config file or a `TITAN_GW_*` variable
    that names no setting, and pydantic's `ValidationError` for bad values.
    """
    values = read_config_file(config_file) if config_file is not None else {}
    check_environment(os.environ)
    token = _CONFIG_FILE_VALUES.set(values)
    try:
        return Settings(**overrides)
    finally:
        _CONFIG_FILE_VALUES.reset(token)


def read_config_file(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML settings file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError([f"config file {path}: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise SettingsError([f"config file {path}: not UTF-8 text ({exc.reason})"]) from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        if (mark := getattr(exc, "problem_mark", None)) is not None:
            where = f" (line {mark.line + 1})"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError([f"config file {path}: not valid YAML: {problem}{where}"]) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError([f"config file {path}: top level must be a mapping"])
    return loaded


# -- unknown variables ---------------------------------------------------------


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse every `TITAN_GW_*` variable that names no setting.

    pydantic-settings ignores them, so a misspelt variable would silently leave
    its setting at the default. Names are case-insensitive, as when they are read.
    """
    problems = [
        problem
        for name in sorted(environ)
        if (problem := unknown_variable_problem(name)) is not None
    ]
    if problems:
        raise SettingsError(problems)


def unknown_variable_problem(name: str) -> str | None:
    """Why `name` is an unknown `TITAN_GW_*` variable, or None when it is fine."""
    upper = name.upper()
    if not upper.startswith(ENV_PREFIX) or upper in NON_SETTING_VARIABLES:
        return None
    path = upper[len(ENV_PREFIX) :].lower().split("__")
    if _names_a_setting(Settings, path):
        return None
    problem = f"unknown variable {name}: no setting {'.'.join(path)!r}"
    # Compared without the prefix, which every candidate shares.
    candidates: dict[str, tuple[str, ...] | None] = {
        "__".join(p): p for p in setting_paths(Settings)
    }
    candidates |= {n[len(ENV_PREFIX) :].lower(): None for n in NON_SETTING_VARIABLES}
    close = difflib.get_close_matches("__".join(path), list(candidates), n=1)
    if close:
        meant = candidates[close[0]]
        if meant is None:
            problem += f" (did you mean {ENV_PREFIX}{close[0].upper()}?)"
        else:
            problem += f" (did you mean {'.'.join(meant)!r}, {variable_name(meant)}?)"
    return problem


def variable_name(path: Iterable[str]) -> str:
    """The environment variable of a setting: ("emulator", "latency_ms") ->
    TITAN_GW_EMULATOR__LATENCY_MS."""
    return ENV_PREFIX + "__".join(path).upper()


def setting_paths(model: type[BaseModel]) -> list[tuple[str, ...]]:
    """Every setting's path, nested models' fields included."""
    paths: list[tuple[str, ...]] = []
    for field_name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is None:
            paths.append((field_name,))
        else:
            paths += [(field_name, *p) for p in setting_paths(nested)]
    return paths


def _names_a_setting(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    nested = _nested_model(field.annotation)
    if nested is not None:
        return _names_a_setting(nested, path[1:])
    return _is_mapping(field.annotation)  # a key of a dict setting, checked by its type


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in _union_members(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_mapping(annotation: Any) -> bool:
    for candidate in _union_members(annotation):
        origin = typing.get_origin(candidate) or candidate
        if isinstance(origin, type) and issubclass(origin, Mapping):
            return True
    return False


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)
