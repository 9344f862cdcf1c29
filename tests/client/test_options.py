"""The channel options every client starts from, and how callers change them."""

from __future__ import annotations

from gateway.client import CHANNEL_OPTIONS
from gateway.client._channel import channel_options


def test_the_defaults_take_big_images_and_never_ping_idle_connections() -> None:
    options = dict(CHANNEL_OPTIONS)
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert options["grpc.keepalive_time_ms"] > 5 * 60 * 1000  # the server's minimum


def test_a_callers_option_replaces_the_default_of_that_name() -> None:
    options = dict(channel_options([("grpc.max_receive_message_length", 1), ("grpc.x", "y")]))
    assert options["grpc.max_receive_message_length"] == 1
    assert options["grpc.x"] == "y"
    assert options["grpc.keepalive_time_ms"] == 6 * 60 * 1000
