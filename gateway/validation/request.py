"""`decode_request`: a GenerateImagesRequest → a validated ImageJob, or InvalidRequest."""

from __future__ import annotations

from gateway.domain import ImageJob
from gateway.enums import TaskType
from gateway.models import ModelRegistry, ModelSpec
from gateway.validation.config import decode_config
from gateway.validation.tasks import decode_task
from gateway.validation.violations import Context, Violations, show
from titan.gateway.v1 import image_service_pb2

MAX_CLIENT_REQUEST_ID = 128
# The members of the request's `task` oneof and the Bedrock task each one runs.
TASK_TYPES: dict[str, TaskType] = {
    "text_to_image": TaskType.TEXT_IMAGE,
    "inpainting": TaskType.INPAINTING,
    "outpainting": TaskType.OUTPAINTING,
    "image_variation": TaskType.IMAGE_VARIATION,
    "background_removal": TaskType.BACKGROUND_REMOVAL,
    "color_guided_generation": TaskType.COLOR_GUIDED_GENERATION,
}


def decode_request(
    request: image_service_pb2.GenerateImagesRequest, registry: ModelRegistry
) -> ImageJob:
    """Validate `request` against its model's limits and decode it into an ImageJob.

    Raises InvalidRequest listing every violation found (never anything else
    for bad input). Without a known model or a task, the task's own fields are
    not checked: their limits depend on both.
    """
    out = Violations()
    _check_client_request_id(out, request.client_request_id)
    model = _model(out, registry, request.model_id)
    name = request.WhichOneof("task")
    if name is None:
        out.add("task", f"exactly one task must be set: one of {', '.join(TASK_TYPES)}")
    if model is None or name is None:
        raise out.error()
    ctx = Context(model, out)
    _check_supported(ctx, name)
    task, source = decode_task(ctx, request, name)
    config = decode_config(ctx, request.config, name, source)
    if out or task is None:
        raise out.error()
    return ImageJob(task, config, model, request.client_request_id)


def _model(out: Violations, registry: ModelRegistry, model_id: str) -> ModelSpec | None:
    model = registry.get(model_id)
    if model is None:
        out.add("model_id", f"must be one of {', '.join(registry.ids)} (got {show(model_id)})")
    return model


def _check_supported(ctx: Context, name: str) -> None:
    task_type = TASK_TYPES[name]
    if task_type not in ctx.limits.tasks:
        supported = ", ".join(sorted(ctx.limits.tasks))
        ctx.add(name, f"{task_type} is not supported by {ctx.model_id} (supported: {supported})")


def _check_client_request_id(out: Violations, value: str) -> None:
    if len(value) > MAX_CLIENT_REQUEST_ID:
        out.add(
            "client_request_id",
            f"must be at most {MAX_CLIENT_REQUEST_ID} characters (got {len(value)})",
        )
    if not value.isprintable():
        out.add("client_request_id", f"must contain only printable characters (got {show(value)})")
