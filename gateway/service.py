"""The ImageService servicer: authenticate, validate, decide, fan out, stream."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, NoReturn

from gateway.auth import caller
from gateway.convert import QUALITY_TO_PROTO, TASK_TYPE_TO_PROTO, failure_reason, image_facts
from gateway.decisions import apply_decision, decide, refuse_if_denied
from gateway.domain import ImageJob
from gateway.errors import GatewayError, NotATenant, to_rpc_status
from gateway.fanout import FanOut, ImageLost, ImageReady
from gateway.models import ModelRegistry
from gateway.policy_store import PolicyStore
from gateway.validation import decode_request
from policies import Decision, Tenant
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc

log = logging.getLogger(__name__)


class ImageService(image_service_pb2_grpc.ImageServiceServicer):
    """Serves GenerateImages and EstimateCost for authenticated tenants."""

    def __init__(
        self,
        registry: ModelRegistry,
        policies: PolicyStore,
        fanout: FanOut,
        default_timeout: float,
    ) -> None:
        self._registry = registry
        self._policies = policies
        self._fanout = fanout
        self._default_timeout = default_timeout

    async def GenerateImages(
        self, request: pb.GenerateImagesRequest, context: Any
    ) -> AsyncIterator[pb.GenerateImagesResponse]:
        try:
            tenant, job, decision = self._admit(request)
        except GatewayError as exc:
            await _abort(context, exc)
        request_id = str(uuid.uuid4())
        yield pb.GenerateImagesResponse(accepted=_accepted(job, decision, tenant, request_id))
        delivered: list[int] = []
        lost: list[ImageLost] = []
        try:
            async for outcome in self._fanout.run(job, self._deadline(context)):
                if isinstance(outcome, ImageReady):
                    delivered.append(outcome.index)
                    yield pb.GenerateImagesResponse(image=_image(job, outcome))
                else:
                    lost.append(outcome)
                    yield pb.GenerateImagesResponse(image_failed=_image_failed(outcome))
        except GatewayError as exc:
            await _abort(context, exc)
        except Exception:  # a bug, not bad input: INTERNAL with a logged traceback
            log.exception("request %s failed unexpectedly", request_id)
            await _abort(context, GatewayError(f"internal error (request {request_id})"))
        if not delivered and lost and all(x.error.retryable for x in lost):
            # Nothing arrived and waiting may help: say so with the status, so
            # the caller's retry policy applies (UNAVAILABLE / DEADLINE_EXCEEDED).
            await _abort(context, lost[0].error)
        completed = pb.Completed(images_delivered=len(delivered), images_failed=len(lost))
        yield pb.GenerateImagesResponse(completed=completed)

    async def EstimateCost(
        self, request: pb.EstimateCostRequest, context: Any
    ) -> pb.EstimateCostResponse:
        """A dry run: the same decision GenerateImages would make, and the price."""
        try:
            tenant = _tenant()
            job = decode_request(request.request, self._registry)
            decision = decide(self._policies.current, tenant, job, request.request, _now())
            if decision.allowed:
                job = apply_decision(request.request, decision, self._registry)
        except GatewayError as exc:
            await _abort(context, exc)
        return _estimate(job, decision)

    def _admit(self, request: pb.GenerateImagesRequest) -> tuple[Tenant, ImageJob, Decision]:
        """Authenticated, valid and allowed by the policy, or a GatewayError."""
        tenant = _tenant()
        job = decode_request(request, self._registry)
        decision = decide(self._policies.current, tenant, job, request, _now())
        _log_shadow(decision, tenant)
        refuse_if_denied(decision)
        return tenant, apply_decision(request, decision, self._registry), decision

    def _deadline(self, context: Any) -> float:
        """The caller's deadline as a monotonic instant (or the default timeout)."""
        remaining: float | None = context.time_remaining()
        if remaining is None:
            remaining = self._default_timeout
        return time.monotonic() + min(remaining, self._default_timeout)


def _tenant() -> Tenant:
    who = caller()
    if who.tenant is None:
        raise NotATenant("this RPC needs a tenant API key, not an admin key")
    return who.tenant


def _now() -> datetime:
    return datetime.now(UTC)


def _log_shadow(decision: Decision, tenant: Tenant) -> None:
    for result in decision.shadow:
        log.info("shadow rule %s (tenant %s): %s", result.rule, tenant.id, result.outcome)


async def _abort(context: Any, error: GatewayError) -> NoReturn:
    log.info("request refused: %s %s", error.code.name, error.message)
    await context.abort_with_status(to_rpc_status(error))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def _rewrites(decision: Decision) -> list[pb.Rewrite]:
    return [
        pb.Rewrite(rule=r.rule, field=r.field, old_value=str(r.old), new_value=str(r.new))
        for r in decision.rewrites
    ]


def _accepted(job: ImageJob, decision: Decision, tenant: Tenant, request_id: str) -> pb.Accepted:
    return pb.Accepted(
        request_id=request_id,
        client_request_id=job.client_request_id,
        model_id=job.model.model_id,
        task_type=TASK_TYPE_TO_PROTO[job.task_type],
        image_count=job.config.count,
        width=job.config.width,
        height=job.config.height,
        quality=QUALITY_TO_PROTO[job.config.quality],
        seed=job.config.seed,
        rewrites=_rewrites(decision),
        price_per_image_micros=decision.price_per_image_micros,
        estimated_cost_micros=decision.estimate_micros,
        tenant_id=tenant.id,
    )


def _estimate(job: ImageJob, decision: Decision) -> pb.EstimateCostResponse:
    return pb.EstimateCostResponse(
        model_id=job.model.model_id,
        task_type=TASK_TYPE_TO_PROTO[job.task_type],
        image_count=job.config.count,
        width=job.config.width,
        height=job.config.height,
        quality=QUALITY_TO_PROTO[job.config.quality],
        allowed=decision.allowed,
        denied_by=decision.denied_by or "",
        message=decision.message,
        rewrites=_rewrites(decision),
        shadow=[
            pb.ShadowResult(rule=s.rule, effect=s.effect, outcome=s.outcome)
            for s in decision.shadow
        ],
        price_per_image_micros=decision.price_per_image_micros,
        estimated_cost_micros=decision.estimate_micros,
    )


def _image(job: ImageJob, ready: ImageReady) -> pb.Image:
    mime, width, height = image_facts(ready.data)
    return pb.Image(
        index=ready.index,
        data=ready.data,
        mime_type=mime,
        seed=ready.seed,
        width=width,
        height=height,
        model_id=job.model.model_id,
    )


def _image_failed(lost: ImageLost) -> pb.ImageFailed:
    return pb.ImageFailed(
        index=lost.index,
        seed=lost.seed,
        reason=failure_reason(lost.error),
        message=lost.error.message,
    )
