"""Fixtures for the backend tests: an AWS environment isolated from this
machine's credentials, a scripted Bedrock server, and backends pointed at it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.backends.bedrock import BedrockBackend, BedrockConfig
from gateway.domain import ImageJob
from tests.backends.support import ScriptedBedrock, make_job

_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
)

MakeBackend = Callable[..., Awaitable[BedrockBackend]]


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from this machine, and no instance-metadata probe off loopback."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def job() -> ImageJob:
    return make_job()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedBedrock]:
    bedrock = ScriptedBedrock()
    await bedrock.start()
    yield bedrock
    await bedrock.stop()


@pytest.fixture
async def make_backend(server: ScriptedBedrock) -> AsyncIterator[MakeBackend]:
    """Started backends pointed at `server`, with fast backoff; closed afterwards."""
    started: list[BedrockBackend] = []

    async def make(rng: random.Random | None = None, **overrides: object) -> BedrockBackend:
        settings: dict[str, object] = {
            "endpoint_url": server.url,
            "backoff_base": 0.001,
            "backoff_max": 0.01,
        }
        settings.update(overrides)
        config = BedrockConfig(**settings)  # type: ignore[arg-type]
        backend = BedrockBackend(config, rng=rng or random.Random(0))
        await backend.start()
        started.append(backend)
        return backend

    yield make
    for backend in started:
        await backend.close()
