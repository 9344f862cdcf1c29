"""`decode_request`: a GenerateImagesRequest → a validated ImageJob, or an error.

The task type comes from the `task` oneof (text-to-image conditioned on a
sketch or a structure is a Control task); the model is `model_id`, or the
registry's default for that task type when it is empty.
"""

from __future__ import annotations

from gateway.domain import ImageJob
from gateway.enums import TaskType
from gateway.errors import TaskNotSupported
from gateway.registry import MAX_BODY_BYTES, ModelRegistry, ModelSpec
from gateway.validation.config import decode_config
from gateway.validation.tasks import decode_task
from gateway.validation.violations import Context, Violations, show
from titan.gateway.v1 import image_service_pb2, tasks_pb2

MAX_CLIENT_REQUEST_ID = 128
# The members of the request's `task` oneof and the task type each one runs.
TASK_TYPES: dict[str, TaskType] = {
    "text_to_image": TaskType.TEXT_IMAGE,
    "inpainting": TaskType.INPAINTING,
    "outpainting": TaskType.OUTPAINTING,
    "image_variation": TaskType.IMAGE_VARIATION,
    "background_removal": TaskType.BACKGROUND_REMOVAL,
    "color_guided_generation": TaskType.COLOR_GUIDED_GENERATION,
    "image_to_image": TaskType.IMAGE_TO_IMAGE,
    "fast_upscale": TaskType.FAST_UPSCALE,
    "conservative_upscale": TaskType.CONSERVATIVE_UPSCALE,
    "creative_upscale": TaskType.CREATIVE_UPSCALE,
    "search_and_replace": TaskType.SEARCH_AND_REPLACE,
    "search_and_recolor": TaskType.SEARCH_AND_RECOLOR,
    "erase_object": TaskType.ERASE_OBJECT,
    "expand_canvas": TaskType.EXPAND_CANVAS,
    "style_guide": TaskType.STYLE_GUIDE,
    "style_transfer": TaskType.STYLE_TRANSFER,
    "virtual_try_on": TaskType.VIRTUAL_TRY_ON,
}
# Text-to-image with these control modes runs on Stability's Control services.
_CONTROL_TASKS: dict[int, TaskType] = {
    tasks_pb2.CONTROL_MODE_SKETCH: TaskType.CONTROL_SKETCH,
    tasks_pb2.CONTROL_MODE_STRUCTURE: TaskType.CONTROL_STRUCTURE,
}


def decode_request(
    request: image_service_pb2.GenerateImagesRequest, registry: ModelRegistry
) -> ImageJob:
    """Validate `request` against its model's limits and decode it into an ImageJob.

    Raises TaskNotSupported when the model cannot run the task (before any
    other check of the task), else InvalidRequest listing every violation
    found (never anything else for bad input). Without a known model or a
    task, the task's own fields are not checked: their limits depend on both.
    """
    out = Violations()
    _check_client_request_id(out, request.client_request_id)
    name = request.WhichOneof("task")
    task_type = None if name is None else request_task_type(request, name)
    model = _model(out, registry, request.model_id, task_type)
    if name is None or task_type is None:
        out.add("task", f"exactly one task must be set: one of {', '.join(TASK_TYPES)}")
        raise out.error()
    if model is None:
        raise out.error()
    if not model.can(task_type):
        raise TaskNotSupported(model.model_id, task_type.value, registry.supporting(task_type))
    ctx = Context(model, out)
    decoded = decode_task(ctx, request, name)
    config = decode_config(ctx, request.config, name, task_type, decoded)
    _check_body_size(ctx, name)
    if out or decoded.task is None:
        raise out.error()
    return ImageJob(decoded.task, config, model, request.client_request_id)


def request_task_type(request: image_service_pb2.GenerateImagesRequest, name: str) -> TaskType:
    """The task type the request's `name` task runs as."""
    if name == "text_to_image" and request.text_to_image.HasField("conditioning"):
        mode = request.text_to_image.conditioning.control_mode
        return _CONTROL_TASKS.get(mode, TaskType.TEXT_IMAGE)
    return TASK_TYPES[name]


def _model(
    out: Violations, registry: ModelRegistry, model_id: str, task_type: TaskType | None
) -> ModelSpec | None:
    if not model_id:
        if task_type is None:
            return None  # the missing task is reported
        model = registry.default_for(task_type)
        if model is None:
            can = ", ".join(registry.supporting(task_type)) or "none is registered"
            out.add(
                "model_id",
                f"is required for {task_type}: no default model is configured for it "
                f"(models that can run it: {can})",
            )
        return model
    model = registry.get(model_id)
    if model is None:
        # The ids that would work here: those that can run the task, if any.
        ids = (registry.supporting(task_type) if task_type else None) or registry.ids
        out.add("model_id", f"must be one of {', '.join(ids)} (got {show(model_id)})")
    return model


def _check_body_size(ctx: Context, name: str) -> None:
    """The base64 input images alone must fit in Bedrock's InvokeModel body.

    A lower bound, reported with the other violations; `gateway.routing`
    checks the exact encoded body (prompts, fields and all) before any spend."""
    encoded = sum(4 * -(-size // 3) for _, size in ctx.inputs)
    if encoded <= MAX_BODY_BYTES:
        return
    raw = sum(size for _, size in ctx.inputs)
    field = ctx.inputs[0][0] if len(ctx.inputs) == 1 else name
    most = MAX_BODY_BYTES * 3 // 4
    ctx.add(
        field,
        f"input images of {raw} bytes in all are {encoded} bytes base64-encoded: more than "
        f"Bedrock's {MAX_BODY_BYTES}-byte request body holds (at most {most} bytes of "
        "images)",
    )


def _check_client_request_id(out: Violations, value: str) -> None:
    if len(value) > MAX_CLIENT_REQUEST_ID:
        out.add(
            "client_request_id",
            f"must be at most {MAX_CLIENT_REQUEST_ID} characters (got {len(value)})",
        )
    if not value.isprintable():
        out.add("client_request_id", f"must contain only printable characters (got {show(value)})")
