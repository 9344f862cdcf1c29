"""W3C trace-context propagation over gRPC metadata (OpenTelemetry API only).

The server extracts the caller's ``traceparent``/``tracestate`` so a request's
spans join the caller's trace; clients and tests inject them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Metadata = Sequence[tuple[str, str | bytes]]

_PROPAGATOR: Final = TraceContextTextMapPropagator()


class _MetadataGetter(Getter[Mapping[str, list[str]]]):
    """Reads a carrier already folded into lower-case key → values."""

    def get(self, carrier: Mapping[str, list[str]], key: str) -> list[str] | None:
        return carrier.get(key.lower())

    def keys(self, carrier: Mapping[str, list[str]]) -> list[str]:
        return list(carrier)


_GETTER: Final = _MetadataGetter()


def extract_context(metadata: Metadata | None) -> Context:
    """The trace context carried by gRPC `metadata`; an empty `Context` when
    there is none (never the ambient one), so a server span started with it
    is a root span."""
    return _PROPAGATOR.extract(_fold(metadata or ()), context=Context(), getter=_GETTER)


def inject_metadata(context: Context | None = None) -> list[tuple[str, str]]:
    """Metadata entries carrying `context` (default: the current one); empty
    when there is no valid span to propagate."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return list(carrier.items())


def _fold(metadata: Metadata) -> dict[str, list[str]]:
    # gRPC keys are case-insensitive and may repeat; binary ("-bin") values
    # arrive as bytes and are never trace-context headers, but decode safely.
    folded: dict[str, list[str]] = {}
    for key, value in metadata:
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        folded.setdefault(key.lower(), []).append(text)
    return folded
