"""`AsyncGatewayClient`: the gateway's API over one `grpc.aio` channel."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any

import grpc

from gateway.client import _calls as calls
from gateway.client._calls import Call, GenerateResult, Moment, R, ResultBuilder
from gateway.client._channel import Connection
from gateway.client._errors import ClientError
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import usage_service_pb2 as usage_pb


class AsyncGatewayClient(Connection):
    """The gateway's API for asyncio code.

        async with AsyncGatewayClient("gw.example:50051", api_key=KEY) as gw:
            async for event in gw.generate(request):
                ...

    `api_key` authenticates the tenant calls (image calls and `usage`),
    `admin_key` the admin calls; with `tls` the channel is TLS (mutual TLS
    with a client certificate, which identifies the tenant when no
    `api_key` is given). `timeout` is each call's deadline in seconds (None:
    none). The channel, opened on first use and closed by `close()` or
    leaving the `async with`, has these defaults (`options` replace them by
    name):

    - `grpc.max_receive_message_length` / `max_send_message_length` 64 MiB:
      an image is several MB; the gateway's own limit on requests is its
      `max_receive_message_bytes`.
    - keepalive pings only while a call is open and at most every 6 minutes
      (`keepalive_permit_without_calls` 0, `keepalive_time_ms` 360000):
      gRPC core servers count a ping sooner than 5 minutes after the last
      one (2 hours on an idle connection) as abuse and hang up after two.

    Every failed call raises `ClientError`.
    """

    _channel: grpc.aio.Channel | None = None

    async def __aenter__(self) -> AsyncGatewayClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls still running are cancelled."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    # ------------------------------------------------------------ images

    async def generate(
        self, request: pb.GenerateImagesRequest
    ) -> AsyncGenerator[pb.GenerateImagesResponse, None]:
        """GenerateImages: the events as they arrive (Accepted, then each Image
        or ImageFailed, then Completed). Closing the generator cancels the
        call: wrap it in `contextlib.aclosing` to stop at once when you leave
        the loop early (else it stops when collected, or when the client closes)."""
        call = self._open(calls.generate(request), "unary_stream")
        try:
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as err:
            raise ClientError.from_rpc_error(err) from err
        finally:
            call.cancel()

    async def generate_images(self, request: pb.GenerateImagesRequest) -> GenerateResult:
        """GenerateImages, the whole stream collected (failed images included)."""
        builder = ResultBuilder()
        async for event in self.generate(request):
            builder.add(event)
        return builder.result()

    async def estimate(self, request: pb.GenerateImagesRequest) -> pb.EstimateCostResponse:
        """EstimateCost: what the request would run and cost; spends nothing."""
        return await self._unary(calls.estimate(request))

    async def detect_provenance(self, image: bytes) -> pb.DetectProvenanceResponse:
        """DetectProvenance: the image's C2PA manifest, watermark and request."""
        return await self._unary(calls.detect_provenance(image))

    async def usage(
        self, since: Moment | None = None, until: Moment | None = None
    ) -> usage_pb.GetUsageResponse:
        """GetUsage: the tenant's budgets, quotas and spend per model."""
        return await self._unary(calls.usage(since, until))

    # ------------------------------------------------------------- admin

    async def policy_status(self) -> admin_pb.GetPolicyStatusResponse:
        """GetPolicyStatus: which policy serves and how the last reload went."""
        return await self._unary(calls.policy_status())

    async def reload_policy(self) -> admin_pb.ReloadPolicyResponse:
        """ReloadPolicy: re-read the policy file (a failed reload keeps the last)."""
        return await self._unary(calls.reload_policy())

    async def set_budget(
        self, tenant_id: str, period: usage_pb.BudgetPeriod | str, limit_micros: int
    ) -> admin_pb.SetBudgetResponse:
        """SetBudget: the tenant's cap for one period, in micro-USD."""
        return await self._unary(calls.set_budget(tenant_id, period, limit_micros))

    async def top_up_budget(
        self, tenant_id: str, period: usage_pb.BudgetPeriod | str, amount_micros: int
    ) -> admin_pb.TopUpBudgetResponse:
        """TopUpBudget: raise the tenant's cap for one period by micro-USD."""
        return await self._unary(calls.top_up_budget(tenant_id, period, amount_micros))

    async def tenant_usage(
        self, tenant_id: str, since: Moment | None = None, until: Moment | None = None
    ) -> admin_pb.GetTenantUsageResponse:
        """GetTenantUsage: any tenant's usage report."""
        return await self._unary(calls.tenant_usage(tenant_id, since, until))

    async def usage_records(
        self, tenant_id: str = "", limit: int = 0
    ) -> admin_pb.ListUsageRecordsResponse:
        """ListUsageRecords: billed images, newest first ("" for all tenants)."""
        return await self._unary(calls.usage_records(tenant_id, limit))

    async def denials(self, tenant_id: str = "", limit: int = 0) -> admin_pb.ListDenialsResponse:
        """ListDenials: refused requests, newest first ("" for all tenants)."""
        return await self._unary(calls.denials(tenant_id, limit))

    async def models(self) -> admin_pb.ListModelsResponse:
        """ListModels: the gateway's model registry."""
        return await self._unary(calls.models())

    async def audit_log(self, tenant_id: str = "", limit: int = 0) -> admin_pb.ListAuditLogResponse:
        """ListAuditLog: admin actions, newest first ("" for all tenants)."""
        return await self._unary(calls.audit_log(tenant_id, limit))

    # ---------------------------------------------------------- plumbing

    async def _unary(self, call: Call[R]) -> R:
        try:
            response: R = await self._open(call, "unary_unary")
        except grpc.aio.AioRpcError as err:
            raise ClientError.from_rpc_error(err) from err
        return response

    def _open(self, call: Call[Any], kind: str) -> Any:
        """Start `call` on the channel, made on first use (in the running loop)."""
        if self._channel is None:
            self._channel = self._connect()
        return self._start(self._channel, call, kind)

    def _connect(self) -> grpc.aio.Channel:
        if self._tls is None:
            return grpc.aio.insecure_channel(self.target, options=self._options)
        credentials = self._tls.credentials()
        return grpc.aio.secure_channel(self.target, credentials, options=self._options)
