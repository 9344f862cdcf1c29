"""Builders for the stream's protobuf events and the EstimateCost answer."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gateway.convert import QUALITY_TO_PROTO, TASK_TYPE_TO_PROTO, failure_reason, image_facts
from gateway.domain import ImageJob
from gateway.fanout import ImageLost, ImageReady
from policies import Decision
from titan.gateway.v1 import image_service_pb2 as pb


def rewrites(decision: Decision) -> list[pb.Rewrite]:
    return [
        pb.Rewrite(rule=r.rule, field=r.field, old_value=str(r.old), new_value=str(r.new))
        for r in decision.rewrites
    ]


def accepted(
    job: ImageJob,
    decision: Decision,
    tenant_id: str,
    request_id: str,
    fallbacks: Sequence[ImageJob] = (),
) -> pb.Accepted:
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
        rewrites=rewrites(decision),
        price_per_image_micros=decision.price_per_image_micros,
        estimated_cost_micros=decision.estimate_micros,
        tenant_id=tenant_id,
        fallback_model_ids=[f.model.model_id for f in fallbacks],
        route_arm=decision.route_arm,
    )


def estimate(
    job: ImageJob, decision: Decision, fallbacks: Sequence[ImageJob] = ()
) -> pb.EstimateCostResponse:
    shadow = [
        pb.ShadowResult(rule=s.rule, effect=s.effect, outcome=s.outcome) for s in decision.shadow
    ]
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
        rewrites=rewrites(decision),
        shadow=shadow,
        price_per_image_micros=decision.price_per_image_micros,
        estimated_cost_micros=decision.estimate_micros,
        fallback_model_ids=[f.model.model_id for f in fallbacks],
        route_arm=decision.route_arm,
    )


def image(ready: ImageReady, cost_micros: int) -> pb.Image:
    """The event for one finished image; its size and type are read from the bytes."""
    marked = ready.marked
    if marked is not None and marked.width:
        mime, width, height = marked.mime, marked.width, marked.height
    else:
        mime, width, height = image_facts(ready.data)
    return pb.Image(
        index=ready.index,
        data=ready.data,
        mime_type=mime,
        seed=ready.seed,
        width=width,
        height=height,
        model_id=ready.job.model.model_id,
        cost_micros=cost_micros,
        mask=ready.mask or b"",
        sha256=marked.sha256 if marked else hashlib.sha256(ready.data).hexdigest(),
        watermark_id=marked.watermark_id if marked else "",
        signed=marked.signed if marked else False,
    )


def image_failed(lost: ImageLost) -> pb.ImageFailed:
    return pb.ImageFailed(
        index=lost.index,
        seed=lost.seed,
        reason=failure_reason(lost.error),
        message=lost.error.message,
    )
