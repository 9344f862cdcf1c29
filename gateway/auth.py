"""Authentication: `authorization: Bearer <key>` → the caller, for every RPC
except health and reflection.

Keys are looked up through the serving policy, which stores only their
sha256 hashes and compares them in constant time. The caller is handed to
the servicer through a context variable set inside the RPC's own task.

Authentication comes before decoding, by construction. grpc decodes a
request with its handler's `request_deserializer` before the behaviour runs,
and this interceptor picks the handler once it knows the caller, before grpc
reads the body. An unknown caller's handler has a deserializer that drops the
body unparsed (grpc still receives it whole: a one-message request is read
before any behaviour runs), then refuses. Only a known caller's handler
parses it, and a body that is not the method's message is INVALID_ARGUMENT
naming the message type, never an exception class. Neither hands the body
itself to a behaviour: an aborted call's frames stay alive (grpc keeps the
abort exception, whose traceback holds them) until the cyclic GC runs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool

from gateway.policy_store import PolicyStore
from gateway.tls import certificate_identities
from policies import Tenant

log = logging.getLogger(__name__)

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
    """Resolves the caller before the request is decoded; unknown keys never reach
    the handler, and their request bodies are never parsed."""

    def __init__(self, store: PolicyStore, *, client_certificates: bool = False) -> None:
        self._store = store
        # Whether the port verifies client certificates (tls.client_ca_file):
        # only then can a call without a key still be a tenant's.
        self._client_certificates = client_certificates

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        details: Any,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(PUBLIC_PREFIXES):
            return handler
        key = bearer_key(details.invocation_metadata)
        who = self._resolve(key)
        if who is None and (key is not None or not self._client_certificates):
            # A key, when sent, decides alone; without client certificates there is nothing else.
            return _refusing(handler, grpc.StatusCode.UNAUTHENTICATED, self._unauthenticated)
        if handler.request_streaming:
            # Its messages would be decoded by grpc as they are read, or read
            # raw through `context.read()`: no such RPC is served, so fail closed.
            return _refusing(handler, grpc.StatusCode.UNIMPLEMENTED, _STREAMING_REQUESTS)
        if who is None:  # no key, on a port that verified the caller's certificate
            return _with_caller(handler, self._from_certificate, _request_type(details.method))
        return _with_caller(handler, who, _request_type(details.method))

    @property
    def _unauthenticated(self) -> str:
        return _UNAUTHENTICATED_MTLS if self._client_certificates else _UNAUTHENTICATED

    def _from_certificate(self, context: Any) -> Caller | None:
        """The tenant the verified client certificate of this call maps to (never admin)."""
        names = certificate_identities(context.auth_context())
        tenant = self._store.current.identify(names)
        if tenant is None:
            log.info("client certificate %s maps to no tenant", ", ".join(names) or "(none)")
            return None
        return Caller(tenant=tenant)

    def _resolve(self, key: str | None) -> Caller | None:
        if key is None:
            return None
        policy = self._store.current
        if policy.is_admin(key):
            return Caller(admin=True)
        tenant = policy.authenticate(key)
        return Caller(tenant=tenant) if tenant is not None else None


_UNAUTHENTICATED = "missing or unknown API key (send 'authorization: Bearer <key>')"
_UNAUTHENTICATED_MTLS = (
    "missing or unknown API key, and no client certificate mapped to a tenant "
    "(send 'authorization: Bearer <key>', or a certificate named in a tenant's "
    "client_certificates)"
)
_STREAMING_REQUESTS = "request-streaming RPCs are not served"


@functools.cache  # keyed by registered methods only: unknown ones never get here
def _request_type(method: str) -> str:
    """The full name of `/pkg.Service/Method`'s request message."""
    service, _, name = method.lstrip("/").partition("/")
    try:
        found = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return "request"
    return str(found.input_type.full_name)


def _refusing(handler: Any, code: grpc.StatusCode, message: str) -> Any:
    """A handler of `handler`'s kind that drops the request body unparsed and
    ends the call with `code` at once."""
    if handler.response_streaming:

        async def refuse_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            await context.abort(code, message)
            yield  # pragma: no cover  (makes this an async generator)

        return _same_kind(handler, refuse_stream, _discard)

    async def refuse(request: Any, context: Any) -> Any:
        await context.abort(code, message)

    return _same_kind(handler, refuse, _discard)


def _discard(raw: bytes) -> bytes:
    """The request deserializer of a refusal: the body is never parsed."""
    return b""


class _Undecodable:
    """What a known caller's request decodes to when it is not the method's message."""


_UNDECODABLE = _Undecodable()


def _decoding(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserialize`, answering `_UNDECODABLE` instead of raising."""
    if deserialize is None:
        return None  # the behaviour takes raw bytes
    parse = deserialize

    def decode(raw: bytes) -> Any:
        try:
            return parse(raw)
        except Exception:  # DecodeError, or whatever a custom deserializer raises
            return _UNDECODABLE

    return decode


class _Pending:
    """A body held unparsed until the caller is known from the call's certificate.
    Cleared before a refusal, so an aborted call's frames do not keep it alive."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw: bytes | None = raw


def _pending(raw: bytes) -> _Pending:
    return _Pending(raw)


Resolver = Callable[[Any], Caller | None]


def _with_caller(handler: Any, who: Caller | Resolver, type_name: str) -> Any:
    """A handler like `handler` (one request message) that decodes the body
    without raising, sets the caller and runs `handler`'s behaviour on it.

    `who` is the caller, or (no key, client certificates verified) a function
    finding it from the call's context: then grpc hands the behaviour the body
    unparsed, and it is parsed only once the certificate names a tenant."""
    invalid = f"the request body is not a valid {type_name} message"

    async def refuse_undecodable(context: Any) -> None:
        log.info("request refused: INVALID_ARGUMENT %s", invalid)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, invalid)

    decode = _decoding(handler.request_deserializer)

    async def admit(request: Any, context: Any) -> Any:
        """Sets the caller; the request, decoded (a deferred body is parsed here)."""
        if isinstance(who, Caller):
            current_caller.set(who)
            return request
        found = who(context)
        if found is None:
            request.raw = None  # dropped unparsed, as for an unknown key
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED_MTLS)
        else:
            current_caller.set(found)
        raw, request.raw = request.raw, None
        return raw if decode is None else decode(raw)

    deserializer = decode if isinstance(who, Caller) else _pending
    if handler.response_streaming:
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            request = await admit(request, context)
            if request is _UNDECODABLE:
                await refuse_undecodable(context)
            async for response in inner_stream(request, context):
                yield response

        return _same_kind(handler, stream, deserializer)
    inner = handler.unary_unary

    async def unary(request: Any, context: Any) -> Any:
        request = await admit(request, context)
        if request is _UNDECODABLE:
            await refuse_undecodable(context)
        return await inner(request, context)

    return _same_kind(handler, unary, deserializer)


_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _same_kind(
    handler: Any, behaviour: Callable[..., Any], deserializer: Callable[[bytes], Any] | None
) -> Any:
    """A handler of `handler`'s kind running `behaviour` on what `deserializer` makes
    of the body."""
    factory = _FACTORIES[handler.request_streaming, handler.response_streaming]
    return factory(
        behaviour,
        request_deserializer=deserializer,
        response_serializer=handler.response_serializer,
    )
