"""One validated settings object, from a config file and the environment.

Precedence (highest first): environment variables `TITAN_GW_*` (nested with
`__`, e.g. `TITAN_GW_EMULATOR__LATENCY_MS=50`), then the YAML config file
named by `TITAN_GW_CONFIG` or `--config`, then the defaults below. AWS
credentials are never read from here: the standard AWS chain supplies them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.enums import TaskType
from gateway.registry import ModelRegistry, load_registry

ENV_PREFIX = "TITAN_GW_"
# The development policy shipped with the package: one demo tenant whose key
# is documented in the README. Real deployments point policy_file elsewhere.
DEV_POLICY = Path(__file__).resolve().parent.parent / "policies" / "examples" / "dev.yaml"


class EmulatorSettings(BaseModel):
    """The embedded Bedrock emulator (used when backend = emulator)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(0.0, ge=0, description="added latency per image")
    seed_latency_ms: dict[int, float] = Field(
        default_factory=dict, description="per-seed latency override (JSON in the environment)"
    )
    images_per_minute: int | None = Field(None, gt=0, description="throttling quota")
    fault_rate: float = Field(0.0, ge=0, le=1, description="share of calls answered 500")
    input_block_terms: tuple[str, ...] = ("blockedterm",)
    output_block_terms: tuple[str, ...] = ("filteredterm",)


class TelemetrySettings(BaseModel):
    """Traces, metrics and logs. OTLP export turns on by itself when the standard
    OTEL_EXPORTER_OTLP_ENDPOINT variable (or a per-signal one) is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="False: no SDK at all (no-op tracer and meter)")
    prometheus_port: int | None = Field(
        None, ge=0, le=65535, description="serve /metrics on 127.0.0.1:<port>"
    )
    console: bool = Field(False, description="print spans and metrics to stdout (debugging)")
    record_prompts: bool = Field(False, description="put prompts into span attributes")
    json_logs: bool = Field(False, description="one JSON object per log line, with trace ids")
    metric_export_interval_ms: int = Field(10_000, gt=0)


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
    global_images_per_minute: int | None = Field(
        None, gt=0, description="cap across all tenants (stay under the Bedrock account quota)"
    )
    shutdown_grace_s: float = Field(10.0, ge=0)
    emulator: EmulatorSettings = Field(default_factory=EmulatorSettings)  # type: ignore[arg-type]
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _registry_loads(self) -> Settings:
        self.registry()  # a bad registry file or default fails at load, not per request
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
        # Environment beats the file, which beats the defaults; the file's
        # values arrive as init kwargs (see `load_settings`).
        return (env_settings, init_settings)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `config_file` (YAML), the environment, then `overrides`.

    `overrides` (used by tests and CLI flags) beat everything else.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: top level must be a mapping")
        values.update(loaded)
    settings = Settings(**values)
    if overrides:
        settings = Settings.model_validate({**settings.model_dump(), **overrides})
    return settings
