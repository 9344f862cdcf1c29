"""The gateway's one exception tree and its one mapping to gRPC status.

    GatewayError                      INTERNAL
    ├── InvalidRequest                INVALID_ARGUMENT + google.rpc.BadRequest
    ├── ContentBlocked                PERMISSION_DENIED + ErrorInfo CONTENT_FILTERED
    ├── PolicyDenied                  PERMISSION_DENIED + ErrorInfo POLICY_DENIED|MODERATION_BLOCKED
    ├── PolicyMisconfigured           FAILED_PRECONDITION (a rewrite made the request invalid)
    ├── TaskNotSupported              FAILED_PRECONDITION + ErrorInfo TASK_NOT_SUPPORTED
    ├── ModelRetired                  FAILED_PRECONDITION + ErrorInfo MODEL_RETIRED
    ├── NotATenant                    PERMISSION_DENIED (an admin key on a tenant RPC or vice versa)
    ├── QuotaExceeded                 RESOURCE_EXHAUSTED + QuotaFailure + RetryInfo (waiting helps)
    │                                 FAILED_PRECONDITION + QuotaFailure (it never fits the quota)
    ├── BudgetRefused                 FAILED_PRECONDITION + ErrorInfo BUDGET_EXHAUSTED
    ├── IdempotencyConflict           ALREADY_EXISTS (same key, different request)
    ├── StoreUnavailable              UNAVAILABLE (the ledger's database failed)
    ├── ReservationExpired            ABORTED + ErrorInfo RESERVATION_LOST (lease lost mid-run)
    └── BackendError                  (a Bedrock call failed)
        ├── ImageFiltered             one image withheld by the output filter
        ├── BackendThrottled          UNAVAILABLE (still throttled after retries)
        ├── BackendUnavailable        UNAVAILABLE (5xx after retries, connection)
        ├── BackendTimeout            DEADLINE_EXCEEDED
        └── BackendRejected           the backend refused the call (carries a code)

Per-image failures (`BackendError.per_image`) become `image_failed` events;
everything else ends the stream with the status below. Foreign exceptions are
mapped where they are caught (`raise ... from exc`), in the backend modules.

Every google.rpc.ErrorInfo carries `ERROR_DOMAIN`, "titan.gateway.v1". AIP-193
makes the domain the logical grouping its reasons belong to, globally unique,
typically the registered service name (Google's "pubsub.googleapis.com").
This API has no DNS name of its own; the name it does own, already global in
gRPC method paths and Any type URLs, is its protobuf package, and the reasons
are documented in that package's protos. The version is part of it: a later
API may define other reasons under its own package without v1 clients
matching them. Clients compare (domain, reason), never the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "titan.gateway.v1"


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule: the dotted proto field path and what the rule says."""

    field: str
    description: str


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        """google.rpc detail messages to pack into the status."""
        return []


class InvalidRequest(GatewayError):
    """The request breaks a model limit; lists every violation found."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        self.violations = tuple(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(f"invalid request: {summary}")

    def details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        return [_pack(bad)]


class ContentBlocked(GatewayError):
    """The backend's input content filter refused the prompt or an image."""

    code = grpc.StatusCode.PERMISSION_DENIED

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(reason="CONTENT_FILTERED", domain=ERROR_DOMAIN)
        return [_pack(info)]


class PolicyDenied(GatewayError):
    """The tenant's policy denied the request: a rule, or moderation.

    `reason` is POLICY_DENIED (metadata: rule) or MODERATION_BLOCKED
    (metadata: category, field). The matched moderation term is never carried.
    """

    code = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, message: str, reason: str, metadata: dict[str, str]) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = metadata

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata
        )
        return [_pack(info)]


class PolicyMisconfigured(GatewayError):
    """A policy rewrite produced a request the model cannot run."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class TaskNotSupported(GatewayError):
    """The model cannot run the task; names the models that can. Nothing is spent."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, model_id: str, task: str, supported_by: Sequence[str]) -> None:
        can = ", ".join(supported_by) or "no registered model"
        super().__init__(f"model {model_id} cannot run {task}; models that can: {can}")
        self.metadata = {"model": model_id, "task": task, "supported_by": ",".join(supported_by)}

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(
            reason="TASK_NOT_SUPPORTED", domain=ERROR_DOMAIN, metadata=self.metadata
        )
        return [_pack(info)]


class ModelRetired(GatewayError):
    """The model is past its end of life on Bedrock; names its replacement."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, model_id: str, eol: str, replacement: str | None) -> None:
        instead = f"; use {replacement} instead" if replacement else ""
        super().__init__(f"model {model_id} reached its end of life on Bedrock on {eol}{instead}")
        self.metadata = {"model": model_id, "eol": eol, "replacement": replacement or ""}

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(
            reason="MODEL_RETIRED", domain=ERROR_DOMAIN, metadata=self.metadata
        )
        return [_pack(info)]


class ProvenanceOff(GatewayError):
    """DetectProvenance on a gateway started without provenance."""

    code = grpc.StatusCode.UNIMPLEMENTED


class NotATenant(GatewayError):
    """The key is valid but not for this RPC (admin key on a tenant RPC, or the reverse)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class QuotaExceeded(GatewayError):
    """A rate or concurrency quota refused the request; nothing was reserved.

    With a finite `retry_after_s` waiting fixes it (RESOURCE_EXHAUSTED with
    RetryInfo); a request larger than the quota's burst never fits
    (FAILED_PRECONDITION, no RetryInfo), so clients do not retry it.
    """

    def __init__(self, message: str, quota: str, subject: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.quota = quota
        self.subject = subject
        self.retry_after_s = retry_after_s
        waiting_helps = retry_after_s != float("inf")
        self.code = (
            grpc.StatusCode.RESOURCE_EXHAUSTED
            if waiting_helps
            else grpc.StatusCode.FAILED_PRECONDITION
        )

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=self.subject, description=f"{self.quota}: {self.message}"
                )
            ]
        )
        packed = [_pack(failure)]
        if self.retry_after_s != float("inf"):
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(max(1, int(self.retry_after_s * 1e9)))
            packed.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        return packed


class BudgetRefused(GatewayError):
    """The tenant's budget cannot cover the estimate; waiting seconds will not help."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, metadata: dict[str, str]) -> None:
        super().__init__(message)
        self.metadata = metadata

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(
            reason="BUDGET_EXHAUSTED", domain=ERROR_DOMAIN, metadata=self.metadata
        )
        return [_pack(info)]


class IdempotencyConflict(GatewayError):
    """The idempotency key was already used for a different request."""

    code = grpc.StatusCode.ALREADY_EXISTS


class StoreUnavailable(GatewayError):
    """The ledger's store failed (unreachable, locked too long); retrying may work."""

    code = grpc.StatusCode.UNAVAILABLE


class ReservationExpired(GatewayError):
    """The request's budget reservation was lost while it ran (its replica
    stalled past the lease, or its renewals failed) and the budget no longer
    covers the rest: the images not yet billed are neither sent nor charged."""

    code = grpc.StatusCode.ABORTED

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(reason="RESERVATION_LOST", domain=ERROR_DOMAIN)
        return [_pack(info)]


class BackendError(GatewayError):
    """A backend call failed. `per_image` errors fail one image, not the request."""

    code = grpc.StatusCode.UNAVAILABLE
    per_image = True
    # Whether waiting and retrying the same request may succeed.
    retryable = True


class ImageFiltered(BackendError):
    """The backend's output content filter withheld this image."""

    code = grpc.StatusCode.PERMISSION_DENIED
    retryable = False


class ImageUnmarked(BackendError):
    """The image could not be watermarked and signed, and the tenant's policy
    requires provenance: it is not delivered, and not charged."""

    code = grpc.StatusCode.INTERNAL
    retryable = False


class BackendThrottled(BackendError):
    """Still throttled after the retries."""


class BackendUnavailable(BackendError):
    """5xx or connection failures after the retries."""


class BackendTimeout(BackendError):
    """The call did not finish within the caller's deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class BackendRejected(BackendError):
    """The backend refused the call itself (e.g. validation, access denied).

    Not per image: the same call would fail for every image.
    """

    per_image = False
    retryable = False

    def __init__(self, message: str, code: grpc.StatusCode) -> None:
        super().__init__(message)
        self.code = code


def to_rpc_status(error: GatewayError) -> grpc.Status:
    """The gRPC status (with google.rpc details) for a gateway error."""
    status = status_pb2.Status(
        code=_CODE_NUMBERS[error.code],
        message=error.message,
        details=error.details(),
    )
    return rpc_status.to_status(status)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


_CODE_NUMBERS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    grpc.StatusCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    grpc.StatusCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED: code_pb2.ABORTED,
    grpc.StatusCode.DATA_LOSS: code_pb2.DATA_LOSS,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
}
