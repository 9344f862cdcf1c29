"""Telemetry: the gateway's metric instruments, trace propagation over gRPC
metadata and JSON logs, all on the OpenTelemetry API.

The SDK lives in `gateway.telemetry.sdk`, which only the server's start-up
imports; it is deliberately not re-exported here, so importing this package
never pulls in the SDK.
"""

from gateway.telemetry.instruments import (
    BackendOutcome,
    BudgetCallback,
    BudgetReading,
    ImageOutcome,
    Instruments,
    RetryReason,
    get_tracer,
    size_class,
)
from gateway.telemetry.logs import JsonLogFormatter, configure_logging
from gateway.telemetry.propagation import extract_context, inject_metadata

__all__ = [
    "BackendOutcome",
    "BudgetCallback",
    "BudgetReading",
    "ImageOutcome",
    "Instruments",
    "JsonLogFormatter",
    "RetryReason",
    "configure_logging",
    "extract_context",
    "get_tracer",
    "inject_metadata",
    "size_class",
]
