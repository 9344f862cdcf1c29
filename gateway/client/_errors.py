"""`ClientError`: every failed call, with the google.rpc details decoded.

This is the one place the client maps grpc's exceptions (`AioRpcError` from
the async client, `grpc.RpcError` from the sync one); callers catch
`ClientError` and read plain fields, never grpc's status protos.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

# How grpc-core words a connection it could not make (refused, no route,
# unknown host): the gateway was never reached, as opposed to an UNAVAILABLE
# the gateway itself answered (a store down, shutting down).
_UNREACHABLE = (
    "failed to connect",
    "connection refused",
    "dns resolution failed",
    "errors resolving",
    "name or service not known",
    "no route to host",
    "network is unreachable",
    "connect failed",
)


@dataclass(frozen=True)
class FieldViolation:
    """google.rpc.BadRequest: one request field and what is wrong with it."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


@dataclass(frozen=True)
class QuotaViolation:
    """google.rpc.QuotaFailure: the quota that refused the call."""

    subject: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """google.rpc.PreconditionFailure: a state the call needed and did not find."""

    type: str
    subject: str
    description: str


@dataclass(frozen=True)
class ErrorInfo:
    """google.rpc.ErrorInfo: a machine-readable reason (`BUDGET_EXHAUSTED`, …)."""

    reason: str
    domain: str
    metadata: dict[str, str] = field(default_factory=dict)


class ClientError(Exception):
    """A call the gateway (or the network on the way) refused.

    `code` is the gRPC status, `message` its text; the google.rpc details the
    gateway packs into the status are decoded into `violations` (BadRequest),
    `error_info` (ErrorInfo), `quota_violations` (QuotaFailure),
    `retry_delay` (RetryInfo) and `precondition_violations`
    (PreconditionFailure). `unreachable` is true when no connection to the
    gateway could be made at all.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        violations: tuple[FieldViolation, ...] = (),
        error_info: ErrorInfo | None = None,
        quota_violations: tuple[QuotaViolation, ...] = (),
        retry_delay: timedelta | None = None,
        precondition_violations: tuple[PreconditionViolation, ...] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.violations = violations
        self.error_info = error_info
        self.quota_violations = quota_violations
        self.retry_delay = retry_delay
        self.precondition_violations = precondition_violations

    @property
    def reason(self) -> str | None:
        """ErrorInfo's reason, if the status carries one."""
        return self.error_info.reason if self.error_info else None

    @property
    def unreachable(self) -> bool:
        """No connection could be made: wrong address, or the gateway is down."""
        lowered = self.message.lower()
        return self.code == grpc.StatusCode.UNAVAILABLE and any(
            phrase in lowered for phrase in _UNREACHABLE
        )

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> ClientError:
        """The error for a failed grpc call (sync `RpcError` or `AioRpcError`)."""
        decoded: dict[str, Any] = {}
        for detail in _details(err):
            for message_type, keyword, convert in _DECODERS:
                message = message_type()
                if detail.Unpack(message):
                    value = convert(message)
                    if isinstance(value, tuple):  # repeated details add up
                        value = decoded.get(keyword, ()) + value
                    decoded[keyword] = value
        return cls(err.code(), err.details() or "", **decoded)


def _details(err: grpc.RpcError) -> list[Any]:
    """The status details packed in the trailers (google.protobuf.Any each)."""
    try:
        status = rpc_status.from_call(err)
    except ValueError:  # a status whose code or message disagrees with the details
        return []
    return list(status.details) if status else []


def _field_violations(bad: Any) -> tuple[FieldViolation, ...]:
    return tuple(FieldViolation(v.field, v.description) for v in bad.field_violations)


def _error_info(info: Any) -> ErrorInfo:
    return ErrorInfo(info.reason, info.domain, dict(info.metadata))


def _quota_violations(failure: Any) -> tuple[QuotaViolation, ...]:
    return tuple(QuotaViolation(v.subject, v.description) for v in failure.violations)


def _retry_delay(retry: Any) -> timedelta:
    delay: timedelta = retry.retry_delay.ToTimedelta()
    return delay


def _precondition_violations(failure: Any) -> tuple[PreconditionViolation, ...]:
    found = failure.violations
    return tuple(PreconditionViolation(v.type, v.subject, v.description) for v in found)


# Which google.rpc detail becomes which ClientError field, and how.
_DECODERS: tuple[tuple[Any, str, Callable[[Any], Any]], ...] = (
    (error_details_pb2.BadRequest, "violations", _field_violations),
    (error_details_pb2.ErrorInfo, "error_info", _error_info),
    (error_details_pb2.QuotaFailure, "quota_violations", _quota_violations),
    (error_details_pb2.RetryInfo, "retry_delay", _retry_delay),
    (error_details_pb2.PreconditionFailure, "precondition_violations", _precondition_violations),
)
