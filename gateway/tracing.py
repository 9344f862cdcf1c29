"""The telemetry interceptor: one SERVER span per RPC, continuing the
caller's W3C `traceparent`, with the RPC semantic conventions
(`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`) and the
request-duration metric. It is the outermost interceptor, so refusals by
authentication are traced too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.auth import caller
from gateway.observe import RPC_STATUS, Observer
from gateway.telemetry import extract_context

# OpenTelemetry RPC conventions: a server span is an error only for these.
_SERVER_ERRORS = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}
_UNTRACED = ("/grpc.health.v1.", "/grpc.reflection.")


class TelemetryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, observer: Observer) -> None:
        self._observer = observer

    async def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_UNTRACED):
            return handler
        return _traced(handler, details, self._observer)


def _traced(handler: Any, details: Any, observer: Observer) -> Any:
    service, _, method = details.method.lstrip("/").partition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
    parent = extract_context(details.invocation_metadata)

    def start() -> Any:
        return observer.tracer.start_as_current_span(
            details.method.lstrip("/"), context=parent, kind=SpanKind.SERVER,
            attributes=attributes, record_exception=False, set_status_on_exception=False,
        )  # fmt: skip

    def done(span: trace.Span, context: Any, began: float, error: BaseException | None) -> None:
        code = _status(context, error)
        span.set_attribute(RPC_STATUS, code.value[0])
        if code in _SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, context.details() or code.name))
        tenant = caller().tenant
        observer.instruments.request_duration(
            time.perf_counter() - began, method, code.name, tenant.id if tenant else ""
        )

    if handler.response_streaming:
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            with start() as span:
                began, error = time.perf_counter(), None
                try:
                    async for response in inner_stream(request, context):
                        yield response
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    done(span, context, began, error)

        return grpc.unary_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )
    inner = handler.unary_unary

    async def unary(request: Any, context: Any) -> Any:
        with start() as span:
            began, error = time.perf_counter(), None
            try:
                return await inner(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                done(span, context, began, error)

    return grpc.unary_unary_rpc_method_handler(
        unary, handler.request_deserializer, handler.response_serializer
    )


def _status(context: Any, error: BaseException | None) -> grpc.StatusCode:
    """The status the RPC ends with: the one set by abort, else from the exception."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, (GeneratorExit,)) or type(error).__name__ == "CancelledError":
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN
