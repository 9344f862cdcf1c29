"""A gateway for the sync client's tests, which are plain functions: the
gateway runs on an event loop in a thread of its own, because while a sync
test blocks, pytest-asyncio's loop (and a gateway on it) does not run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.server import RunningGateway, start_gateway
from gateway.settings import load_settings

TITAN_V2 = "amazon.titan-image-generator-v2:0"


@pytest.fixture
def threaded_gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    """A real gateway on port 0, served from a background thread's loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()
    settings = load_settings(listen="127.0.0.1:0", data_dir=tmp_path, default_model_id=TITAN_V2)
    gateway = asyncio.run_coroutine_threadsafe(start_gateway(settings), loop).result(60)
    try:
        yield gateway
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(0), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
