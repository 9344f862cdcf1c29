"""GatewayClient from plain (non-async) functions, as a script uses it,
against a real gateway served from another thread (see conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from gateway.client import ClientError, GatewayClient
from gateway.server import RunningGateway
from tests.auth import DEV_ADMIN_KEY, DEV_KEY
from tests.client.requests import fox


def client(gateway: RunningGateway) -> GatewayClient:
    return GatewayClient(gateway.address, api_key=DEV_KEY, admin_key=DEV_ADMIN_KEY, timeout=60)


def test_generate_streams_events_into_a_plain_loop(threaded_gateway) -> None:
    with client(threaded_gateway) as gw:
        kinds = [event.WhichOneof("event") for event in gw.generate(fox(2))]
    assert kinds == ["accepted", "image", "image", "completed"]


def test_generate_images_estimate_and_usage_agree(threaded_gateway) -> None:
    with client(threaded_gateway) as gw:
        estimate = gw.estimate(fox(2))
        result = gw.generate_images(fox(2))
        usage = gw.usage()
        records = gw.usage_records("dev")
    assert len(result.images) == 2
    assert result.completed is not None
    assert usage.window_cost_micros == result.completed.cost_micros
    assert estimate.estimated_cost_micros == result.completed.cost_micros
    assert len(records.records) == 2


def test_errors_are_client_errors_with_their_violations(threaded_gateway) -> None:
    with client(threaded_gateway) as gw:
        with pytest.raises(ClientError) as caught:
            list(gw.generate(fox(1, text="x" * 600)))
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in caught.value.violations] == ["text_to_image.text"]
        with pytest.raises(ClientError) as unary:
            gw.tenant_usage("")
        assert unary.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_closing_the_stream_early_cancels_the_backend_calls(gateway) -> None:
    # In a thread, so this test's loop serves the gateway meanwhile.
    def first_event_then_close() -> tuple[str, bool]:
        with client(gateway) as gw:
            events = gw.generate(fox(3))
            kind = next(events).WhichOneof("event")
            assert until(lambda: gateway.emulator.stats.in_flight == 3)
            events.close()
            # Checked before the channel closes, which would cancel it too.
            return kind, until(lambda: gateway.emulator.stats.in_flight == 0)

    gateway.emulator.hold()
    try:
        assert await asyncio.to_thread(first_event_then_close) == ("accepted", True)
    finally:
        gateway.emulator.release()


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `condition` comes true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
