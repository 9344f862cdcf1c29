"""Between the validated request and the pure policy engine: the facts a
decision is made from, and applying the decision back onto the request.

`rewrite_request` applies a decision's rewrites to a copy of the protobuf
request; the servicer validates that copy again, so a rule can never make the
gateway send Bedrock a request the model cannot run (`misconfigured` reports
such a rewrite as a policy configuration error naming the rule).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.convert import QUALITY_FROM_NAME
from gateway.domain import ImageJob
from gateway.errors import InvalidRequest, PolicyDenied, PolicyMisconfigured, TaskNotSupported
from policies import (
    Decision,
    Facts,
    Policy,
    RequestFacts,
    Tenant,
    UsageFacts,
    evaluate,
)
from titan.gateway.v1 import image_service_pb2 as pb

TEXT_FIELDS = ("text", "negative_text", "mask_prompt", "search_prompt", "select_prompt")


def decide(
    policy: Policy, tenant: Tenant, job: ImageJob, request: pb.GenerateImagesRequest, now: datetime
) -> Decision:
    """The policy's decision on a validated request (no usage facts yet)."""
    return evaluate(policy, facts_for(tenant, job, request, UsageFacts()), now)


def facts_for(
    tenant: Tenant,
    job: ImageJob,
    request: pb.GenerateImagesRequest,
    usage: UsageFacts,
    request_key: str = "",
) -> Facts:
    """`request_key` keys sticky A/B splits per request (the client's
    idempotency key, or the gateway's request id)."""
    sizes = job.model.limits.sizes
    texts = prompt_texts(request)
    return Facts(
        tenant=tenant.facts(),
        request=request_facts(job, request, texts, request_key),
        usage=usage,
        texts=texts,
        size_options=tuple(sorted(sizes)) if sizes is not None else None,
    )


def request_facts(
    job: ImageJob, request: pb.GenerateImagesRequest, texts: dict[str, str], request_key: str = ""
) -> RequestFacts:
    task_field = request.WhichOneof("task") or ""
    inputs = _input_image_count(job)
    return RequestFacts(
        task=job.task_type.value,
        model=job.model.model_id,
        width=job.config.width,
        height=job.config.height,
        count=job.config.count,
        quality=job.config.quality.value,
        prompt_length=len(texts.get(f"{task_field}.text", "")),
        negative_prompt_length=len(texts.get(f"{task_field}.negative_text", "")),
        input_images=inputs,
        cfg_scale=job.config.cfg_scale or 0.0,
        request_key=request_key,
    )


def prompt_texts(request: pb.GenerateImagesRequest) -> dict[str, str]:
    """Every prompt-like text of the request, keyed by its proto field path."""
    task_field = request.WhichOneof("task")
    if task_field is None:
        return {}
    task = getattr(request, task_field)
    names = {f.name for f in task.DESCRIPTOR.fields}
    return {
        f"{task_field}.{name}": getattr(task, name)
        for name in TEXT_FIELDS
        if name in names and getattr(task, name)
    }


def refuse_if_denied(decision: Decision) -> None:
    """Raise PolicyDenied for a denied decision; never echo a moderation term."""
    if decision.allowed:
        return
    verdict = decision.moderation
    if verdict.blocked:
        raise PolicyDenied(
            decision.message,
            "MODERATION_BLOCKED",
            {"category": verdict.category or "", "field": verdict.field or ""},
        )
    raise PolicyDenied(decision.message, "POLICY_DENIED", {"rule": decision.denied_by or ""})


def rewrite_request(
    request: pb.GenerateImagesRequest, decision: Decision
) -> pb.GenerateImagesRequest | None:
    """A copy of `request` with the decision's rewrites applied; None if there are none."""
    if not decision.rewrites:
        return None
    rewritten = pb.GenerateImagesRequest()
    rewritten.CopyFrom(request)
    for rewrite in decision.rewrites:
        _apply(rewritten, rewrite.field, rewrite.new)
    return rewritten


def misconfigured(
    decision: Decision, exc: InvalidRequest | TaskNotSupported
) -> PolicyMisconfigured:
    rules = ", ".join(sorted({r.rule for r in decision.rewrites}))
    if isinstance(exc, TaskNotSupported):
        why = exc.message
    else:
        why = "; ".join(f"{v.field}: {v.description}" for v in exc.violations)
    return PolicyMisconfigured(
        f"policy rule(s) {rules} rewrote the request into one the model cannot run: {why}"
    )


def _set_quality(request: pb.GenerateImagesRequest, value: object) -> None:
    request.config.quality = QUALITY_FROM_NAME[str(value)]


def _set_count(request: pb.GenerateImagesRequest, value: object) -> None:
    request.config.number_of_images = int(str(value))


def _set_width(request: pb.GenerateImagesRequest, value: object) -> None:
    request.config.width = int(str(value))


def _set_height(request: pb.GenerateImagesRequest, value: object) -> None:
    request.config.height = int(str(value))


def _set_cfg_scale(request: pb.GenerateImagesRequest, value: object) -> None:
    request.config.cfg_scale = float(str(value))


def _set_model(request: pb.GenerateImagesRequest, value: object) -> None:
    request.model_id = str(value)


_SETTERS: dict[str, Callable[[pb.GenerateImagesRequest, object], None]] = {
    "quality": _set_quality,
    "count": _set_count,
    "width": _set_width,
    "height": _set_height,
    "cfg_scale": _set_cfg_scale,
    "model": _set_model,
}


def _apply(request: pb.GenerateImagesRequest, field: str, value: object) -> None:
    setter = _SETTERS.get(field)
    if setter is None:
        raise PolicyMisconfigured(f"policy rewrote an unknown field {field!r}")
    setter(request, value)


def _input_image_count(job: ImageJob) -> int:
    task = job.task
    images = getattr(task, "images", None)
    if images is not None:
        return len(images)
    names = (
        "image",
        "condition_image",
        "reference_image",
        "style_image",
        "source_image",
    )
    return sum(1 for name in names if getattr(task, name, None) is not None)
