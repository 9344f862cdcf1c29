"""Fixtures: an emulator on a loopback port and the REAL aiobotocore client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from aiobotocore.session import AioSession, get_session
from botocore.config import Config

from gateway.emulator import Emulator

_SESSION: AioSession | None = None


def _session() -> AioSession:
    """One botocore session for the run: its loader caches the service model."""
    global _SESSION
    if _SESSION is None:
        _SESSION = get_session()
    return _SESSION


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator()
    await emu.start("127.0.0.1", 0)
    try:
        yield emu
    finally:
        await emu.stop()


@pytest_asyncio.fixture
async def client(emulator: Emulator) -> AsyncIterator[Any]:
    # Note: retries={"max_attempts": 1} would still allow one retry (it counts
    # retries, not attempts); total_max_attempts=1 means exactly one HTTP call.
    config = Config(retries={"total_max_attempts": 1}, read_timeout=30, connect_timeout=5)
    async with _session().create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    ) as bedrock:
        yield bedrock
