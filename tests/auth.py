"""Client side of authentication for tests: a channel interceptor that sends
`authorization: Bearer <key>` on every call, as a real client would."""

from __future__ import annotations

from typing import Any

import grpc

DEV_KEY = "tgw_dev_key"  # policies/examples/dev.yaml
DEV_ADMIN_KEY = "tgw_dev_admin_key"


def _with_key(details: Any, key: str) -> Any:
    metadata = [*(details.metadata or []), ("authorization", f"Bearer {key}")]
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, key: str) -> None:
        self._key = key

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_key(details, self._key), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, key: str) -> None:
        self._key = key

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_key(details, self._key), request)


def bearer(key: str) -> list[Any]:
    """Interceptors for `grpc.aio.insecure_channel(..., interceptors=bearer(key))`."""
    return [_UnaryUnary(key), _UnaryStream(key)]
