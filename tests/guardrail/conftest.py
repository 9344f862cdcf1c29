"""Fixtures: an emulator with one word-list guardrail, and the REAL aiobotocore
bedrock-runtime client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiobotocore.session import AioSession
from botocore.config import Config

from gateway.emulator import Emulator, EmulatorConfig
from gateway.guardrail import GuardrailChecker

BLOCKED_WORD = "forbiddenword"
_SESSION: AioSession | None = None


def session() -> AioSession:
    """One session for the run: its loader caches the service model."""
    global _SESSION
    if _SESSION is None:
        _SESSION = AioSession()
    return _SESSION


def bedrock_client(url: str) -> Any:
    """The client as the gateway configures it: exactly one HTTP call per operation."""
    return session().create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or profiles from this machine, and no instance-metadata probe."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(EmulatorConfig(guardrails={"gr-1": (BLOCKED_WORD,)}))
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest_asyncio.fixture
async def client(emulator: Emulator) -> AsyncIterator[Any]:
    async with bedrock_client(emulator.url) as bedrock:
        yield bedrock


@pytest.fixture
def checker(client: Any) -> GuardrailChecker:
    return GuardrailChecker(client)
