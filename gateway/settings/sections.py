"""The nested sections of the settings: the embedded emulator, telemetry, TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# An empty term would be a substring of every prompt: the guardrail would block all.
BlockTerm = Annotated[str, StringConstraints(min_length=1)]


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
    guardrails: dict[str, tuple[BlockTerm, ...]] = Field(
        default_factory=dict,
        description="ApplyGuardrail guardrails by id (any version) -> the terms each blocks; "
        "a policy's moderation.guardrail must name one (JSON in the environment)",
    )


class TelemetrySettings(BaseModel):
    """Traces, metrics and logs. OTLP export turns on by itself when the standard
    OTEL_EXPORTER_OTLP_ENDPOINT variable (or a per-signal one) is set; the
    resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (service.name
    defaults to titan-image-gateway)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="False: no SDK at all (no-op tracer and meter)")
    prometheus_port: int | None = Field(
        None, ge=0, le=65535, description="serve /metrics on <prometheus_host>:<port>"
    )
    prometheus_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="the address /metrics listens on: 0.0.0.0 (or ::) in a container, "
        "so the scraper can reach it",
    )
    console: bool = Field(False, description="print spans and metrics to stdout (debugging)")
    record_prompts: bool = Field(False, description="put prompts into span attributes")
    json_logs: bool = Field(False, description="one JSON object per log line, with trace ids")
    metric_export_interval_ms: int = Field(10_000, gt=0)


class TlsSettings(BaseModel):
    """TLS on the gRPC port. Without cert_file and key_file the port is plaintext."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path | None = Field(None, description="server certificate chain (PEM)")
    key_file: Path | None = Field(None, description="server private key (PEM)")
    client_ca_file: Path | None = Field(
        None,
        description="CA bundle (PEM) that client certificates are verified against; "
        "needs require_client_cert",
    )
    require_client_cert: bool = Field(
        False, description="refuse TLS handshakes without a client certificate from client_ca_file"
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be set together")
        if self.cert_file is None and (self.client_ca_file or self.require_client_cert):
            raise ValueError("client certificates need TLS: set tls.cert_file and tls.key_file")
        if self.require_client_cert and self.client_ca_file is None:
            raise ValueError("tls.require_client_cert needs tls.client_ca_file")
        if self.client_ca_file is not None and not self.require_client_cert:
            # grpcio's server credentials either request AND require a client
            # certificate or do not request one at all: an optional one is not offered.
            raise ValueError(
                "tls.client_ca_file needs tls.require_client_cert: true "
                "(grpcio cannot ask for an optional client certificate)"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None
