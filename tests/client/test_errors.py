"""ClientError decodes every google.rpc detail the gateway packs (see
gateway/errors.py) from the status trailer, the way grpc hands it over."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway.client import (
    ClientError,
    ErrorInfo,
    FieldViolation,
    PreconditionViolation,
    QuotaViolation,
)


class FailedCall(grpc.RpcError):
    """What grpc raises for a failed call: code, details and trailers."""

    def __init__(self, code: grpc.StatusCode, message: str, *details: Any) -> None:
        packed = []
        for detail in details:
            packed.append(any_pb2.Any())
            packed[-1].Pack(detail)
        status = status_pb2.Status(code=code.value[0], message=message, details=packed)
        self._code, self._message = code, message
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


def test_field_violations_of_every_bad_request_add_up() -> None:
    first = error_details_pb2.BadRequest(
        field_violations=[{"field": "config.width", "description": "must be 320-4096"}]
    )
    second = error_details_pb2.BadRequest(
        field_violations=[{"field": "text_to_image.text", "description": "too long"}]
    )
    err = ClientError.from_rpc_error(
        FailedCall(grpc.StatusCode.INVALID_ARGUMENT, "bad request", first, second)
    )
    assert err.violations == (
        FieldViolation("config.width", "must be 320-4096"),
        FieldViolation("text_to_image.text", "too long"),
    )
    assert str(err.violations[1]) == "text_to_image.text: too long"
    assert str(err) == "INVALID_ARGUMENT: bad request"


def test_quota_failure_retry_info_and_error_info_are_decoded() -> None:
    quota = error_details_pb2.QuotaFailure(
        violations=[{"subject": "tenant:dev", "description": "images_per_minute 10"}]
    )
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=5))
    info = error_details_pb2.ErrorInfo(
        reason="BUDGET_EXHAUSTED", domain="titan.gateway.v1", metadata={"period": "day"}
    )
    err = ClientError.from_rpc_error(
        FailedCall(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", quota, retry, info)
    )
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.message == "slow down"
    assert err.quota_violations == (QuotaViolation("tenant:dev", "images_per_minute 10"),)
    assert err.retry_delay == timedelta(seconds=2, microseconds=0)
    assert err.error_info == ErrorInfo("BUDGET_EXHAUSTED", "titan.gateway.v1", {"period": "day"})
    assert err.reason == "BUDGET_EXHAUSTED"


def test_precondition_failure_is_decoded() -> None:
    failure = error_details_pb2.PreconditionFailure(
        violations=[{"type": "TENANT", "subject": "acme", "description": "no such tenant"}]
    )
    err = ClientError.from_rpc_error(
        FailedCall(grpc.StatusCode.FAILED_PRECONDITION, "unknown tenant", failure)
    )
    assert err.precondition_violations == (
        PreconditionViolation("TENANT", "acme", "no such tenant"),
    )


def test_a_status_without_details_or_one_that_disagrees_has_none() -> None:
    plain = ClientError.from_rpc_error(FailedCall(grpc.StatusCode.INTERNAL, "boom"))
    assert (plain.violations, plain.error_info, plain.retry_delay) == ((), None, None)

    class Disagreeing(FailedCall):
        def details(self) -> str:
            return "another message"

    bad = error_details_pb2.BadRequest(field_violations=[{"field": "f", "description": "d"}])
    err = ClientError.from_rpc_error(Disagreeing(grpc.StatusCode.INVALID_ARGUMENT, "m", bad))
    assert err.violations == ()
    assert err.message == "another message"
