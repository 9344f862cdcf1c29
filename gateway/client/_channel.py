"""How a client connects: address, TLS, channel options and the bearer key.

Shared by the async and the sync client, which differ only in the grpc
channel class they open (`grpc.aio` or plain `grpc`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from gateway.client._calls import Call

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 300.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
ChannelOptions = Sequence[tuple[str, Any]]

CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    # Images are several MB each; the default 4 MiB would refuse a response.
    # What the server accepts is its own max_receive_message_bytes.
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # gRPC core's server counts a ping as abuse when it arrives less than
    # 5 minutes after the previous one with no data sent between (2 hours
    # while no call is open), and closes the connection (GOAWAY
    # too_many_pings) after repeated strikes. So: ping only during calls (a
    # long generation sends nothing for minutes), at most every 6 minutes.
    ("grpc.keepalive_time_ms", 6 * 60 * 1000),
    ("grpc.keepalive_timeout_ms", 20 * 1000),
    ("grpc.keepalive_permit_without_calls", 0),
)


@dataclass(frozen=True)
class TLS:
    """TLS settings: `ca` verifies the gateway (None: the system's roots);
    `cert` and `key`, given together, are a client certificate for mutual
    TLS, which identifies the tenant when no API key is sent. All PEM bytes."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLS cert and key go together")

    @classmethod
    def from_files(
        cls, ca: Path | None = None, cert: Path | None = None, key: Path | None = None
    ) -> TLS:
        """TLS settings read from PEM files (OSError if one cannot be read)."""
        return cls(*(path.read_bytes() if path else None for path in (ca, cert, key)))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def channel_options(overrides: ChannelOptions = ()) -> list[tuple[str, Any]]:
    """CHANNEL_OPTIONS with the caller's options replacing those of the same name."""
    return list({**dict(CHANNEL_OPTIONS), **dict(overrides)}.items())


def bearer(key: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata that authenticates with `key` (none without a key)."""
    return (("authorization", f"Bearer {key}"),) if key else ()


class Connection:
    """What both clients hold: where the gateway is, the keys, TLS, the
    deadline and the channel options; and how a `Call` starts on a channel."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        admin_key: str | None = None,
        tls: TLS | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        options: ChannelOptions = (),
    ) -> None:
        self.target = target
        self._api_key = api_key
        self._admin_key = admin_key
        self._tls = tls
        self._timeout = timeout
        self._options = channel_options(options)

    def _start(self, channel: Any, call: Call[Any], kind: str) -> Any:
        """Start `call` on `channel` (`kind`: "unary_unary" or "unary_stream")."""
        multicallable = getattr(channel, kind)(
            call.method,
            request_serializer=type(call.request).SerializeToString,
            response_deserializer=call.response.FromString,
        )
        key = self._admin_key if call.admin else self._api_key
        return multicallable(call.request, timeout=self._timeout, metadata=bearer(key))
