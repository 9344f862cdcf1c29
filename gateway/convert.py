"""Conversions between the domain vocabulary and the protobuf enums."""

from __future__ import annotations

from io import BytesIO

from PIL import Image as PILImage

from gateway.enums import Quality, TaskType
from gateway.errors import (
    BackendError,
    BackendThrottled,
    BackendTimeout,
    ImageFiltered,
    ImageUnmarked,
)
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2

TASK_TYPE_TO_PROTO: dict[TaskType, tasks_pb2.TaskType] = {
    TaskType.TEXT_IMAGE: tasks_pb2.TASK_TYPE_TEXT_TO_IMAGE,
    TaskType.INPAINTING: tasks_pb2.TASK_TYPE_INPAINTING,
    TaskType.OUTPAINTING: tasks_pb2.TASK_TYPE_OUTPAINTING,
    TaskType.IMAGE_VARIATION: tasks_pb2.TASK_TYPE_IMAGE_VARIATION,
    TaskType.BACKGROUND_REMOVAL: tasks_pb2.TASK_TYPE_BACKGROUND_REMOVAL,
    TaskType.COLOR_GUIDED_GENERATION: tasks_pb2.TASK_TYPE_COLOR_GUIDED_GENERATION,
    TaskType.IMAGE_TO_IMAGE: tasks_pb2.TASK_TYPE_IMAGE_TO_IMAGE,
    TaskType.FAST_UPSCALE: tasks_pb2.TASK_TYPE_FAST_UPSCALE,
    TaskType.CONSERVATIVE_UPSCALE: tasks_pb2.TASK_TYPE_CONSERVATIVE_UPSCALE,
    TaskType.CREATIVE_UPSCALE: tasks_pb2.TASK_TYPE_CREATIVE_UPSCALE,
    TaskType.SEARCH_AND_REPLACE: tasks_pb2.TASK_TYPE_SEARCH_AND_REPLACE,
    TaskType.SEARCH_AND_RECOLOR: tasks_pb2.TASK_TYPE_SEARCH_AND_RECOLOR,
    TaskType.ERASE_OBJECT: tasks_pb2.TASK_TYPE_ERASE_OBJECT,
    TaskType.EXPAND_CANVAS: tasks_pb2.TASK_TYPE_EXPAND_CANVAS,
    TaskType.STYLE_GUIDE: tasks_pb2.TASK_TYPE_STYLE_GUIDE,
    TaskType.STYLE_TRANSFER: tasks_pb2.TASK_TYPE_STYLE_TRANSFER,
    TaskType.CONTROL_SKETCH: tasks_pb2.TASK_TYPE_CONTROL_SKETCH,
    TaskType.CONTROL_STRUCTURE: tasks_pb2.TASK_TYPE_CONTROL_STRUCTURE,
    TaskType.VIRTUAL_TRY_ON: tasks_pb2.TASK_TYPE_VIRTUAL_TRY_ON,
}

QUALITY_TO_PROTO: dict[Quality, tasks_pb2.Quality] = {
    Quality.STANDARD: tasks_pb2.QUALITY_STANDARD,
    Quality.PREMIUM: tasks_pb2.QUALITY_PREMIUM,
}

QUALITY_FROM_NAME: dict[str, tasks_pb2.Quality] = {q.value: v for q, v in QUALITY_TO_PROTO.items()}


def failure_reason(error: BackendError) -> pb.FailureReason:
    """The stable FailureReason code for a per-image failure."""
    if isinstance(error, ImageFiltered):
        return pb.FAILURE_REASON_CONTENT_FILTERED
    if isinstance(error, BackendThrottled):
        return pb.FAILURE_REASON_THROTTLED
    if isinstance(error, BackendTimeout):
        return pb.FAILURE_REASON_TIMEOUT
    if isinstance(error, ImageUnmarked):
        return pb.FAILURE_REASON_PROVENANCE
    return pb.FAILURE_REASON_BACKEND_ERROR


def image_facts(data: bytes) -> tuple[str, int, int]:
    """(mime type, width, height) of an encoded image; reads the header only."""
    with PILImage.open(BytesIO(data)) as img:
        mime = PILImage.MIME.get(img.format or "", "application/octet-stream")
        return mime, img.width, img.height
