"""`titan.refusal` is the reason a client reads from the status, and every
ErrorInfo names the gateway's AIP-193 domain."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from gateway.errors import (
    ERROR_DOMAIN,
    BackendRejected,
    BudgetRefused,
    ContentBlocked,
    FieldViolation,
    GatewayError,
    IdempotencyConflict,
    InvalidRequest,
    ModelRetired,
    PolicyDenied,
    QuotaExceeded,
    ReservationExpired,
    StoreUnavailable,
    TaskNotSupported,
)
from gateway.rpc import refusal_reason

CASES = [
    (PolicyDenied("no", "POLICY_DENIED", {"rule": "r"}), "POLICY_DENIED"),
    (PolicyDenied("no", "MODERATION_BLOCKED", {"category": "c"}), "MODERATION_BLOCKED"),
    (BudgetRefused("empty", {"period": "day"}), "BUDGET_EXHAUSTED"),
    (ContentBlocked("filtered"), "CONTENT_FILTERED"),
    (TaskNotSupported("m", "INPAINTING", ["n"]), "TASK_NOT_SUPPORTED"),
    (ModelRetired("m", "2026-06-30", "n"), "MODEL_RETIRED"),
    (ReservationExpired("lost"), "RESERVATION_LOST"),
    (InvalidRequest([FieldViolation("config.width", "too wide")]), "INVALID_ARGUMENT"),
    (QuotaExceeded("slow down", "images_per_minute", "tenant:a", 3.0), "RESOURCE_EXHAUSTED"),
    (QuotaExceeded("never", "concurrency", "tenant:a", float("inf")), "FAILED_PRECONDITION"),
    (IdempotencyConflict("same key"), "ALREADY_EXISTS"),
    (StoreUnavailable("down"), "UNAVAILABLE"),
    (BackendRejected("no access", grpc.StatusCode.PERMISSION_DENIED), "PERMISSION_DENIED"),
    (GatewayError("bug"), "INTERNAL"),
]


IDS = [f"{type(error).__name__}-{reason}" for error, reason in CASES]


@pytest.mark.parametrize(("error", "reason"), CASES, ids=IDS)
def test_the_refusal_is_the_apis_reason(error: GatewayError, reason: str) -> None:
    assert refusal_reason(error) == reason


@pytest.mark.parametrize(("error", "reason"), CASES, ids=IDS)
def test_every_error_info_names_the_service_domain(error: GatewayError, reason: str) -> None:
    infos = []
    for packed in error.details():
        info = error_details_pb2.ErrorInfo()
        if packed.Unpack(info):
            infos.append((info.domain, info.reason))
    if reason in grpc.StatusCode.__members__:  # no ErrorInfo: the status says it all
        assert infos == []
    else:
        assert infos == [(ERROR_DOMAIN, reason)]
    assert ERROR_DOMAIN == "titan.gateway.v1"
