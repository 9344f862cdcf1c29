"""Per-task decoders: one proto task message → one domain task.

A decoder returns `Decoded(task, source)`: `task` is None only when a required
image could not be decoded (a violation is then recorded); `source` is the
image an editing task edits, whose size becomes the output size.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.domain import (
    BackgroundRemoval,
    ColorGuidedGeneration,
    ControlMode,
    ImageVariation,
    Inpainting,
    InputImage,
    Outpainting,
    OutpaintingMode,
    Task,
    TextToImage,
)
from gateway.validation.fields import (
    bounded_float,
    colors,
    enum_value,
    optional_text,
    required_text,
)
from gateway.validation.images import check_image
from gateway.validation.violations import Context
from titan.gateway.v1 import image_service_pb2, tasks_pb2

MAX_VARIATION_IMAGES = 5
_CONTROL_MODES: dict[int, ControlMode] = {
    tasks_pb2.CONTROL_MODE_CANNY_EDGE: ControlMode.CANNY_EDGE,
    tasks_pb2.CONTROL_MODE_SEGMENTATION: ControlMode.SEGMENTATION,
}
_OUTPAINTING_MODES: dict[int, OutpaintingMode] = {
    tasks_pb2.OUTPAINTING_MODE_DEFAULT: OutpaintingMode.DEFAULT,
    tasks_pb2.OUTPAINTING_MODE_PRECISE: OutpaintingMode.PRECISE,
}


class Decoded(NamedTuple):
    task: Task | None
    source: InputImage | None = None


class _Mask(NamedTuple):
    ok: bool
    prompt: str | None = None
    image: InputImage | None = None


def decode_task(
    ctx: Context, request: image_service_pb2.GenerateImagesRequest, name: str
) -> Decoded:
    """Decode the task set in the request's `task` oneof (`name` is the member)."""
    match name:
        case "text_to_image":
            return Decoded(_text_to_image(ctx, request.text_to_image))
        case "inpainting":
            return _inpainting(ctx, request.inpainting)
        case "outpainting":
            return _outpainting(ctx, request.outpainting)
        case "image_variation":
            return Decoded(_image_variation(ctx, request.image_variation))
        case "background_removal":
            image = check_image(ctx, "background_removal.image", request.background_removal.image)
            return Decoded(None if image is None else BackgroundRemoval(image), image)
        case _:
            return Decoded(_color_guided(ctx, request.color_guided_generation))


def _text_to_image(ctx: Context, task: tasks_pb2.TextToImageTask) -> TextToImage | None:
    text = required_text(ctx, "text_to_image.text", task.text)
    negative = optional_text(ctx, "text_to_image.negative_text", task.negative_text)
    if not task.HasField("conditioning"):
        return TextToImage(text, negative)
    cond = task.conditioning
    image = _condition_image(ctx, cond)
    field = "text_to_image.conditioning"
    mode = enum_value(ctx, f"{field}.control_mode", cond.control_mode, _CONTROL_MODES)
    strength = None
    if cond.HasField("control_strength"):
        strength = bounded_float(ctx, f"{field}.control_strength", cond.control_strength, 0.0, 1.0)
    if image is None:
        return None
    return TextToImage(text, negative, image, mode, strength)


def _condition_image(ctx: Context, cond: tasks_pb2.ImageConditioning) -> InputImage | None:
    field = "text_to_image.conditioning"
    if not ctx.limits.conditioning:
        ctx.add(field, f"image conditioning is not supported by {ctx.model_id}")
    if not cond.condition_image:
        ctx.add(f"{field}.condition_image", "is required when conditioning is set")
        return None
    return check_image(ctx, f"{field}.condition_image", cond.condition_image)


def _inpainting(ctx: Context, task: tasks_pb2.InpaintingTask) -> Decoded:
    image = check_image(ctx, "inpainting.image", task.image)
    mask = _mask(ctx, "inpainting", task, image)
    text = optional_text(ctx, "inpainting.text", task.text)
    negative = optional_text(ctx, "inpainting.negative_text", task.negative_text)
    if image is None or not mask.ok:
        return Decoded(None, image)
    return Decoded(Inpainting(image, mask.prompt, mask.image, text, negative), image)


def _outpainting(ctx: Context, task: tasks_pb2.OutpaintingTask) -> Decoded:
    image = check_image(ctx, "outpainting.image", task.image)
    mask = _mask(ctx, "outpainting", task, image)
    text = required_text(ctx, "outpainting.text", task.text)
    negative = optional_text(ctx, "outpainting.negative_text", task.negative_text)
    mode = enum_value(ctx, "outpainting.mode", task.mode, _OUTPAINTING_MODES)
    if image is None or not mask.ok:
        return Decoded(None, image)
    mode = mode or OutpaintingMode.DEFAULT
    return Decoded(Outpainting(image, text, mask.prompt, mask.image, negative, mode), image)


def _mask(
    ctx: Context,
    name: str,
    task: tasks_pb2.InpaintingTask | tasks_pb2.OutpaintingTask,
    image: InputImage | None,
) -> _Mask:
    which = task.WhichOneof("mask")
    if which == "mask_prompt":
        return _Mask(True, prompt=required_text(ctx, f"{name}.mask_prompt", task.mask_prompt))
    if which is None:
        ctx.add(f"{name}.mask", "exactly one of mask_prompt or mask_image is required")
        return _Mask(False)
    mask = check_image(ctx, f"{name}.mask_image", task.mask_image, mask=True)
    if mask is not None and image is not None and _size(mask) != _size(image):
        ctx.add(
            f"{name}.mask_image",
            f"must be the same size as {name}.image ({_size(image)}), got {_size(mask)}",
        )
    return _Mask(mask is not None, image=mask)


def _image_variation(ctx: Context, task: tasks_pb2.ImageVariationTask) -> ImageVariation | None:
    count = len(task.images)
    if not 1 <= count <= MAX_VARIATION_IMAGES:
        ctx.add(
            "image_variation.images", f"must have 1-{MAX_VARIATION_IMAGES} images (got {count})"
        )
    # Only the first five are decoded: decoding is the costly part, and a longer
    # list is already refused.
    images = [
        check_image(ctx, f"image_variation.images[{index}]", data)
        for index, data in enumerate(task.images[:MAX_VARIATION_IMAGES])
    ]
    text = optional_text(ctx, "image_variation.text", task.text)
    negative = optional_text(ctx, "image_variation.negative_text", task.negative_text)
    strength = None
    if task.HasField("similarity_strength"):
        raw = task.similarity_strength
        strength = bounded_float(ctx, "image_variation.similarity_strength", raw, 0.2, 1.0)
    decoded = tuple(image for image in images if image is not None)
    if not decoded or len(decoded) < len(images):
        return None
    return ImageVariation(decoded, text, negative, strength)


def _color_guided(
    ctx: Context, task: tasks_pb2.ColorGuidedGenerationTask
) -> ColorGuidedGeneration | None:
    text = required_text(ctx, "color_guided_generation.text", task.text)
    negative = optional_text(ctx, "color_guided_generation.negative_text", task.negative_text)
    palette = colors(ctx, "color_guided_generation.colors", task.colors)
    if not task.reference_image:
        return ColorGuidedGeneration(text, palette, negative)
    field = "color_guided_generation.reference_image"
    reference = check_image(ctx, field, task.reference_image)
    if reference is None:
        return None
    return ColorGuidedGeneration(text, palette, negative, reference)


def _size(image: InputImage) -> str:
    return f"{image.width}x{image.height}"
