"""Authentication: `authorization: Bearer <key>` → the caller, for every RPC
except health and reflection.

Keys are looked up through the serving policy, which stores only their
sha256 hashes and compares them in constant time. The caller is handed to
the servicer through a context variable set inside the RPC's own task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from gateway.policy_store import PolicyStore
from policies import Tenant

PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


@dataclass(frozen=True)
class Caller:
    """Who is calling: a tenant, or an operator holding an admin key."""

    tenant: Tenant | None = None
    admin: bool = False


# No default: a handler reached without the interceptor finds no caller and
# treats it as unauthenticated (see `caller()`).
current_caller: ContextVar[Caller] = ContextVar("current_caller")
_ANONYMOUS = Caller()


def caller() -> Caller:
    """The caller the interceptor resolved for this RPC (anonymous if none)."""
    return current_caller.get(_ANONYMOUS)


def bearer_key(metadata: Any) -> str | None:
    """The key of an `authorization: Bearer <key>` metadata entry, if any."""
    for name, value in metadata or ():
        if name.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, key = text.partition(" ")
            if scheme.lower() == "bearer" and key.strip():
                return key.strip()
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Resolves the caller before the handler runs; unknown keys never reach it."""

    def __init__(self, store: PolicyStore) -> None:
        self._store = store

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        details: Any,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(PUBLIC_PREFIXES):
            return handler
        who = self._resolve(bearer_key(details.invocation_metadata))
        if who is None:
            return _refusing(handler)
        return _with_caller(handler, who)

    def _resolve(self, key: str | None) -> Caller | None:
        if key is None:
            return None
        policy = self._store.current
        if policy.is_admin(key):
            return Caller(admin=True)
        tenant = policy.authenticate(key)
        return Caller(tenant=tenant) if tenant is not None else None


_UNAUTHENTICATED = "missing or unknown API key (send 'authorization: Bearer <key>')"


def _refusing(handler: Any) -> Any:
    if handler.response_streaming:

        async def refuse_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED)
            yield  # pragma: no cover  (makes this an async generator)

        return _same_kind(handler, refuse_stream)

    async def refuse(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED)

    return _same_kind(handler, refuse)


def _with_caller(handler: Any, who: Caller) -> Any:
    if handler.response_streaming:
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            current_caller.set(who)
            async for response in inner_stream(request, context):
                yield response

        return _same_kind(handler, stream)
    inner = handler.unary_unary

    async def unary(request: Any, context: Any) -> Any:
        current_caller.set(who)
        return await inner(request, context)

    return _same_kind(handler, unary)


def _same_kind(handler: Any, behaviour: Callable[..., Any]) -> Any:
    """A handler like `handler` (unary-unary or unary-stream) running `behaviour`."""
    factory = (
        grpc.unary_stream_rpc_method_handler
        if handler.response_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return factory(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
