"""`GatewayClient`: the same API as `AsyncGatewayClient`, for plain scripts.

It uses grpc's synchronous channel rather than running the async client on a
private event loop in a thread: no thread or loop to manage, Ctrl-C stops a
blocked call, and it works the same inside a program that runs an event loop
of its own (a notebook, an async web app). The requests are built by the
same `_calls` functions, so the two clients cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

import grpc

from gateway.client import _calls as calls
from gateway.client._calls import Call, GenerateResult, Moment, R, collect
from gateway.client._channel import (
    DEFAULT_TARGET,
    DEFAULT_TIMEOUT_S,
    TLS,
    ChannelOptions,
    Connection,
)
from gateway.client._errors import ClientError
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import usage_service_pb2 as usage_pb


class GatewayClient(Connection):
    """The gateway's API, blocking: arguments, channel defaults and errors
    as `AsyncGatewayClient` (see there).

        with GatewayClient("gw.example:50051", api_key=KEY) as gw:
            for event in gw.generate(request):
                ...

    The channel is opened here and closed by `close()` or leaving the `with`.
    One client may be shared by threads.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        admin_key: str | None = None,
        tls: TLS | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        options: ChannelOptions = (),
    ) -> None:
        super().__init__(
            target, api_key=api_key, admin_key=admin_key, tls=tls, timeout=timeout, options=options
        )
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=self._options)
        else:
            self._channel = grpc.secure_channel(target, tls.credentials(), options=self._options)

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls still running are cancelled."""
        self._channel.close()

    # ------------------------------------------------------------ images

    def generate(self, request: pb.GenerateImagesRequest) -> Iterator[pb.GenerateImagesResponse]:
        """GenerateImages: the events as they arrive. Leaving the loop early
        (or closing the iterator) cancels the call."""
        call = self._start(self._channel, calls.generate(request), "unary_stream")
        try:
            yield from call
        except grpc.RpcError as err:
            raise ClientError.from_rpc_error(err) from err
        finally:
            call.cancel()

    def generate_images(self, request: pb.GenerateImagesRequest) -> GenerateResult:
        """GenerateImages, the whole stream collected (failed images included)."""
        return collect(self.generate(request))

    def estimate(self, request: pb.GenerateImagesRequest) -> pb.EstimateCostResponse:
        """EstimateCost: what the request would run and cost; spends nothing."""
        return self._unary(calls.estimate(request))

    def detect_provenance(self, image: bytes) -> pb.DetectProvenanceResponse:
        """DetectProvenance: the image's C2PA manifest, watermark and request."""
        return self._unary(calls.detect_provenance(image))

    def usage(
        self, since: Moment | None = None, until: Moment | None = None
    ) -> usage_pb.GetUsageResponse:
        """GetUsage: the tenant's budgets, quotas and spend per model."""
        return self._unary(calls.usage(since, until))

    # ------------------------------------------------------------- admin

    def policy_status(self) -> admin_pb.GetPolicyStatusResponse:
        """GetPolicyStatus: which policy serves and how the last reload went."""
        return self._unary(calls.policy_status())

    def reload_policy(self) -> admin_pb.ReloadPolicyResponse:
        """ReloadPolicy: re-read the policy file (a failed reload keeps the last)."""
        return self._unary(calls.reload_policy())

    def set_budget(
        self, tenant_id: str, period: usage_pb.BudgetPeriod | str, limit_micros: int
    ) -> admin_pb.SetBudgetResponse:
        """SetBudget: the tenant's cap for one period, in micro-USD."""
        return self._unary(calls.set_budget(tenant_id, period, limit_micros))

    def top_up_budget(
        self, tenant_id: str, period: usage_pb.BudgetPeriod | str, amount_micros: int
    ) -> admin_pb.TopUpBudgetResponse:
        """TopUpBudget: raise the tenant's cap for one period by micro-USD."""
        return self._unary(calls.top_up_budget(tenant_id, period, amount_micros))

    def tenant_usage(
        self, tenant_id: str, since: Moment | None = None, until: Moment | None = None
    ) -> admin_pb.GetTenantUsageResponse:
        """GetTenantUsage: any tenant's usage report."""
        return self._unary(calls.tenant_usage(tenant_id, since, until))

    def usage_records(
        self, tenant_id: str = "", limit: int = 0
    ) -> admin_pb.ListUsageRecordsResponse:
        """ListUsageRecords: billed images, newest first ("" for all tenants)."""
        return self._unary(calls.usage_records(tenant_id, limit))

    def denials(self, tenant_id: str = "", limit: int = 0) -> admin_pb.ListDenialsResponse:
        """ListDenials: refused requests, newest first ("" for all tenants)."""
        return self._unary(calls.denials(tenant_id, limit))

    def models(self) -> admin_pb.ListModelsResponse:
        """ListModels: the gateway's model registry."""
        return self._unary(calls.models())

    def audit_log(self, tenant_id: str = "", limit: int = 0) -> admin_pb.ListAuditLogResponse:
        """ListAuditLog: admin actions, newest first ("" for all tenants)."""
        return self._unary(calls.audit_log(tenant_id, limit))

    # ---------------------------------------------------------- plumbing

    def _unary(self, call: Call[R]) -> R:
        try:
            response: R = self._start(self._channel, call, "unary_unary")
        except grpc.RpcError as err:
            raise ClientError.from_rpc_error(err) from err
        return response
