"""The `alerts` section of the gateway settings: where budget alerts go.

Nested under `Settings.alerts`, so the environment names them with `__`:
`TITAN_GW_ALERTS__WEBHOOK__URL`, `TITAN_GW_ALERTS__WEBHOOK__SECRET`,
`TITAN_GW_ALERTS__SNS__TOPIC_ARN`, … Nothing is sent unless a webhook URL or
an SNS topic is set; the log line of each crossing is written either way.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# Shorter secrets are guessable by brute force against captured signatures.
MIN_SECRET_LENGTH = 16


class WebhookSettings(BaseModel):
    """An HTTP endpoint that gets each budget alert as a signed JSON POST."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        default=None, description="http(s) URL to POST alerts to; unset: no webhook"
    )
    secret: SecretStr | None = Field(
        default=None,
        description=f"HMAC-SHA256 key the body is signed with (at least {MIN_SECRET_LENGTH} "
        "characters); required with url",
    )
    timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="longest wait for one delivery attempt"
    )
    retry_backoff_s: float = Field(
        default=0.5,
        ge=0,
        le=30,
        description="pause before the one retry (after a 5xx or no answer)",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return url

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return secret

    @model_validator(mode="after")
    def _signed(self) -> WebhookSettings:
        if self.url is not None and self.secret is None:
            raise ValueError("alerts.webhook.url needs alerts.webhook.secret (bodies are signed)")
        return self


class SnsSettings(BaseModel):
    """An Amazon SNS topic that gets each budget alert (credentials: the AWS chain)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic_arn: str | None = Field(
        default=None, description="arn:aws:sns:<region>:<account>:<topic>; unset: no SNS"
    )
    region: str | None = Field(default=None, description="default: the topic ARN's region")
    endpoint_url: str | None = Field(
        default=None, description="another SNS endpoint (LocalStack, tests)"
    )
    timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="connect and read timeout of a publish"
    )

    @field_validator("topic_arn")
    @classmethod
    def _arn(cls, arn: str | None) -> str | None:
        if arn is not None and (len(arn.split(":")) != 6 or not arn.startswith("arn:")):
            raise ValueError("must be an SNS topic ARN, arn:aws:sns:<region>:<account>:<topic>")
        return arn

    @property
    def effective_region(self) -> str:
        """`region`, else the one the topic ARN names."""
        if self.region:
            return self.region
        return (self.topic_arn or "").split(":")[3] or "us-east-1"


class AlertSettings(BaseModel):
    """Budget alert delivery: a signed webhook, an SNS topic, both or neither."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: WebhookSettings = WebhookSettings()
    sns: SnsSettings = SnsSettings()
    max_pending: int = Field(
        default=1000,
        ge=1,
        description="deliveries in flight at once; past it new alerts are logged and dropped",
    )
    shutdown_grace_s: float = Field(
        default=5.0, ge=0, description="at shutdown, how long deliveries in flight may finish"
    )
