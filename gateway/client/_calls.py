"""Each operation of the gateway's API as a `Call`: the method path, the
request, the response type and which key it needs.

Both clients send these, so an operation's request is built in one place and
the async and sync methods stay one line each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import usage_service_pb2 as usage_pb

R = TypeVar("R", bound=Message)
Moment = datetime | Timestamp

_IMAGES = "/titan.gateway.v1.ImageService/"
_USAGE = "/titan.gateway.v1.UsageService/"
_ADMIN = "/titan.gateway.v1.AdminService/"


@dataclass(frozen=True)
class Call(Generic[R]):
    """One RPC ready to send; `admin` calls carry the admin key, the others
    the tenant's API key."""

    method: str
    request: Message
    response: type[R]
    admin: bool = False


def generate(request: pb.GenerateImagesRequest) -> Call[pb.GenerateImagesResponse]:
    return Call(_IMAGES + "GenerateImages", request, pb.GenerateImagesResponse)


def estimate(request: pb.GenerateImagesRequest) -> Call[pb.EstimateCostResponse]:
    wrapped = pb.EstimateCostRequest(request=request)
    return Call(_IMAGES + "EstimateCost", wrapped, pb.EstimateCostResponse)


def detect_provenance(image: bytes) -> Call[pb.DetectProvenanceResponse]:
    request = pb.DetectProvenanceRequest(image=image)
    return Call(_IMAGES + "DetectProvenance", request, pb.DetectProvenanceResponse)


def usage(since: Moment | None, until: Moment | None) -> Call[usage_pb.GetUsageResponse]:
    request = usage_pb.GetUsageRequest(**window(since, until))
    return Call(_USAGE + "GetUsage", request, usage_pb.GetUsageResponse)


def policy_status() -> Call[admin_pb.GetPolicyStatusResponse]:
    request = admin_pb.GetPolicyStatusRequest()
    return Call(_ADMIN + "GetPolicyStatus", request, admin_pb.GetPolicyStatusResponse, True)


def reload_policy() -> Call[admin_pb.ReloadPolicyResponse]:
    request = admin_pb.ReloadPolicyRequest()
    return Call(_ADMIN + "ReloadPolicy", request, admin_pb.ReloadPolicyResponse, True)


def set_budget(
    tenant_id: str, period: usage_pb.BudgetPeriod | str, limit_micros: int
) -> Call[admin_pb.SetBudgetResponse]:
    request = admin_pb.SetBudgetRequest(
        tenant_id=tenant_id, period=period, limit_micros=limit_micros
    )
    return Call(_ADMIN + "SetBudget", request, admin_pb.SetBudgetResponse, True)


def top_up_budget(
    tenant_id: str, period: usage_pb.BudgetPeriod | str, amount_micros: int
) -> Call[admin_pb.TopUpBudgetResponse]:
    request = admin_pb.TopUpBudgetRequest(
        tenant_id=tenant_id, period=period, amount_micros=amount_micros
    )
    return Call(_ADMIN + "TopUpBudget", request, admin_pb.TopUpBudgetResponse, True)


def tenant_usage(
    tenant_id: str, since: Moment | None, until: Moment | None
) -> Call[admin_pb.GetTenantUsageResponse]:
    request = admin_pb.GetTenantUsageRequest(tenant_id=tenant_id, **window(since, until))
    return Call(_ADMIN + "GetTenantUsage", request, admin_pb.GetTenantUsageResponse, True)


def usage_records(tenant_id: str, limit: int) -> Call[admin_pb.ListUsageRecordsResponse]:
    request = admin_pb.ListUsageRecordsRequest(tenant_id=tenant_id, limit=limit)
    return Call(_ADMIN + "ListUsageRecords", request, admin_pb.ListUsageRecordsResponse, True)


def denials(tenant_id: str, limit: int) -> Call[admin_pb.ListDenialsResponse]:
    request = admin_pb.ListDenialsRequest(tenant_id=tenant_id, limit=limit)
    return Call(_ADMIN + "ListDenials", request, admin_pb.ListDenialsResponse, True)


def models() -> Call[admin_pb.ListModelsResponse]:
    request = admin_pb.ListModelsRequest()
    return Call(_ADMIN + "ListModels", request, admin_pb.ListModelsResponse, True)


def audit_log(tenant_id: str, limit: int) -> Call[admin_pb.ListAuditLogResponse]:
    request = admin_pb.ListAuditLogRequest(tenant_id=tenant_id, limit=limit)
    return Call(_ADMIN + "ListAuditLog", request, admin_pb.ListAuditLogResponse, True)


def window(since: Moment | None, until: Moment | None) -> dict[str, Timestamp]:
    """The `since` / `until` request fields that were given, as Timestamps (a
    datetime without a time zone is UTC, as protobuf reads it)."""
    return {name: _timestamp(moment) for name, moment in (("since", since), ("until", until))
            if moment is not None}  # fmt: skip


def _timestamp(moment: Moment) -> Timestamp:
    if isinstance(moment, Timestamp):
        return moment
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass(frozen=True)
class GenerateResult:
    """A whole GenerateImages stream: the Accepted event, the images and the
    failures in the order they arrived, and the Completed summary (None only
    if the stream ended without one)."""

    accepted: pb.Accepted | None = None
    images: tuple[pb.Image, ...] = ()
    failures: tuple[pb.ImageFailed, ...] = ()
    completed: pb.Completed | None = None


@dataclass
class ResultBuilder:
    """Folds GenerateImagesResponse events into a GenerateResult."""

    accepted: pb.Accepted | None = None
    images: list[pb.Image] = field(default_factory=list)
    failures: list[pb.ImageFailed] = field(default_factory=list)
    completed: pb.Completed | None = None

    def add(self, event: pb.GenerateImagesResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "accepted":
            self.accepted = event.accepted
        elif kind == "image":
            self.images.append(event.image)
        elif kind == "image_failed":
            self.failures.append(event.image_failed)
        elif kind == "completed":
            self.completed = event.completed

    def result(self) -> GenerateResult:
        return GenerateResult(
            self.accepted, tuple(self.images), tuple(self.failures), self.completed
        )


def collect(events: Iterable[pb.GenerateImagesResponse]) -> GenerateResult:
    """The GenerateResult of a whole (sync) stream."""
    builder = ResultBuilder()
    for event in events:
        builder.add(event)
    return builder.result()
