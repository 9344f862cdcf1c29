"""Per-task decoders: one proto task message → one domain task.

This module holds the tasks Titan and Nova Canvas introduced (text-to-image,
which also runs on Stability's generation and Control models, inpainting,
which also runs on Stability Inpaint, outpainting, variation, background
removal and colour guidance) and the dispatch over every task; the
Stability-only tasks are in `stability_tasks`, virtual try-on in `tryon`.
Every limit comes from the model's `ModelLimits` (`ctx.limits`).
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
    TextToImage,
)
from gateway.enums import Dialect
from gateway.validation.decoded import Decoded, Decoder, pair
from gateway.validation.fields import (
    bounded_float,
    colors,
    enum_value,
    grow_mask,
    optional_float,
    optional_text,
    required_text,
    style,
)
from gateway.validation.images import check_image, check_mask
from gateway.validation.stability_tasks import STABILITY_DECODERS
from gateway.validation.tryon import decode_virtual_try_on
from gateway.validation.violations import Context
from titan.gateway.v1 import image_service_pb2, tasks_pb2

MAX_VARIATION_IMAGES = 5
CONTROL_MODES: dict[int, ControlMode] = {
    tasks_pb2.CONTROL_MODE_CANNY_EDGE: ControlMode.CANNY_EDGE,
    tasks_pb2.CONTROL_MODE_SEGMENTATION: ControlMode.SEGMENTATION,
    tasks_pb2.CONTROL_MODE_SKETCH: ControlMode.SKETCH,
    tasks_pb2.CONTROL_MODE_STRUCTURE: ControlMode.STRUCTURE,
}
_OUTPAINTING_MODES: dict[int, OutpaintingMode] = {
    tasks_pb2.OUTPAINTING_MODE_DEFAULT: OutpaintingMode.DEFAULT,
    tasks_pb2.OUTPAINTING_MODE_PRECISE: OutpaintingMode.PRECISE,
}
_MASK_RETURNING = frozenset({Dialect.TITAN, Dialect.NOVA_CANVAS})
_COND = "text_to_image.conditioning"


class _Mask(NamedTuple):
    ok: bool
    prompt: str | None = None
    image: InputImage | None = None


def decode_task(
    ctx: Context, request: image_service_pb2.GenerateImagesRequest, name: str
) -> Decoded:
    """Decode the task set in the request's `task` oneof (`name` is the member)."""
    return _DECODERS[name](ctx, getattr(request, name))


def _text_to_image(ctx: Context, task: tasks_pb2.TextToImageTask) -> Decoded:
    text = required_text(ctx, "text_to_image.text", task.text)
    negative = optional_text(ctx, "text_to_image.negative_text", task.negative_text)
    chosen = style(ctx, "text_to_image.style", task.style)
    if not task.HasField("conditioning"):
        return Decoded(TextToImage(text, negative, style=chosen))
    cond = task.conditioning
    image = _condition_image(ctx, cond)
    mode = _control_mode(ctx, cond.control_mode)
    strength = optional_float(ctx, _COND, cond, "control_strength", 0.0, 1.0)
    if image is None:
        return Decoded(None)
    return Decoded(TextToImage(text, negative, image, mode, strength, chosen), image)


def _condition_image(ctx: Context, cond: tasks_pb2.ImageConditioning) -> InputImage | None:
    if not ctx.limits.control_modes:
        ctx.add(_COND, f"image conditioning is not supported by {ctx.model_id}")
    if not cond.condition_image:
        ctx.add(f"{_COND}.condition_image", "is required when conditioning is set")
        return None
    return check_image(ctx, f"{_COND}.condition_image", cond.condition_image)


def _control_mode(ctx: Context, value: int) -> ControlMode | None:
    """The mode as given (None: unset, CANNY_EDGE); it must be one of the model's."""
    mode = enum_value(ctx, f"{_COND}.control_mode", value, CONTROL_MODES)
    if value and mode is None:
        return None  # an unknown number: already reported
    effective = mode or ControlMode.CANNY_EDGE
    allowed = ctx.limits.control_modes
    if allowed and effective not in allowed:  # no modes at all: reported on conditioning
        names = " or ".join(sorted(allowed))
        ctx.add(f"{_COND}.control_mode", f"must be {names} for {ctx.model_id} (got {effective})")
    return mode


def _inpainting(ctx: Context, task: tasks_pb2.InpaintingTask) -> Decoded:
    image = check_image(ctx, "inpainting.image", task.image)
    text: str | None
    if ctx.is_stability:  # Stability Inpaint requires a prompt; Titan and Nova do not
        mask = _stability_mask(ctx, task, image)
        text = required_text(ctx, "inpainting.text", task.text)
    else:
        mask = _mask(ctx, "inpainting", task, image)
        text = optional_text(ctx, "inpainting.text", task.text)
    negative = optional_text(ctx, "inpainting.negative_text", task.negative_text)
    return_mask = _return_mask(ctx, "inpainting", task.return_mask)
    grow = grow_mask(ctx, "inpainting", task)
    chosen = style(ctx, "inpainting.style", task.style)
    if image is None or not mask.ok:
        return Decoded(None, image)
    inpainting = Inpainting(
        image, mask.prompt, mask.image, text, negative, return_mask, grow, chosen
    )
    return Decoded(inpainting, image)


def _stability_mask(
    ctx: Context, task: tasks_pb2.InpaintingTask, image: InputImage | None
) -> _Mask:
    """Stability Inpaint: a mask image, or none (the image's transparent pixels)."""
    which = task.WhichOneof("mask")
    if which == "mask_prompt":
        ctx.add(
            "inpainting.mask_prompt",
            f"is not supported by {ctx.model_id}: give mask_image, or no mask to repaint "
            "the image's transparent pixels",
        )
        return _Mask(False)
    if which is None:
        return _Mask(True)
    mask = check_mask(ctx, "inpainting.mask_image", task.mask_image, image, "inpainting.image")
    return _Mask(mask is not None, image=mask)


def _return_mask(ctx: Context, name: str, value: bool) -> bool:
    if value and ctx.model.dialect not in _MASK_RETURNING:
        ctx.add(
            f"{name}.return_mask",
            f"is not supported by {ctx.model_id}: only Titan and Nova Canvas return the mask",
        )
    return value


def _outpainting(ctx: Context, task: tasks_pb2.OutpaintingTask) -> Decoded:
    image = check_image(ctx, "outpainting.image", task.image)
    mask = _mask(ctx, "outpainting", task, image)
    text = required_text(ctx, "outpainting.text", task.text)
    negative = optional_text(ctx, "outpainting.negative_text", task.negative_text)
    mode = enum_value(ctx, "outpainting.mode", task.mode, _OUTPAINTING_MODES)
    return_mask = _return_mask(ctx, "outpainting", task.return_mask)
    if image is None or not mask.ok:
        return Decoded(None, image)
    mode = mode or OutpaintingMode.DEFAULT
    outpainting = Outpainting(image, text, mask.prompt, mask.image, negative, mode, return_mask)
    return Decoded(outpainting, image)


def _mask(
    ctx: Context,
    name: str,
    task: tasks_pb2.InpaintingTask | tasks_pb2.OutpaintingTask,
    image: InputImage | None,
) -> _Mask:
    """Titan / Nova Canvas: exactly one of mask_prompt or mask_image."""
    which = task.WhichOneof("mask")
    if which == "mask_prompt":
        return _Mask(True, prompt=required_text(ctx, f"{name}.mask_prompt", task.mask_prompt))
    if which is None:
        ctx.add(f"{name}.mask", "exactly one of mask_prompt or mask_image is required")
        return _Mask(False)
    mask = check_mask(ctx, f"{name}.mask_image", task.mask_image, image, f"{name}.image")
    return _Mask(mask is not None, image=mask)


def _image_variation(ctx: Context, task: tasks_pb2.ImageVariationTask) -> Decoded:
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
        return Decoded(None)
    return Decoded(ImageVariation(decoded, text, negative, strength))


def _background_removal(ctx: Context, task: tasks_pb2.BackgroundRemovalTask) -> Decoded:
    return pair(check_image(ctx, "background_removal.image", task.image), BackgroundRemoval)


def _color_guided(ctx: Context, task: tasks_pb2.ColorGuidedGenerationTask) -> Decoded:
    text = required_text(ctx, "color_guided_generation.text", task.text)
    negative = optional_text(ctx, "color_guided_generation.negative_text", task.negative_text)
    palette = colors(ctx, "color_guided_generation.colors", task.colors)
    if not task.reference_image:
        return Decoded(ColorGuidedGeneration(text, palette, negative))
    field = "color_guided_generation.reference_image"
    reference = check_image(ctx, field, task.reference_image)
    if reference is None:
        return Decoded(None)
    return Decoded(ColorGuidedGeneration(text, palette, negative, reference))


_DECODERS: dict[str, Decoder] = {
    "text_to_image": _text_to_image,
    "inpainting": _inpainting,
    "outpainting": _outpainting,
    "image_variation": _image_variation,
    "background_removal": _background_removal,
    "color_guided_generation": _color_guided,
    **STABILITY_DECODERS,
    "virtual_try_on": decode_virtual_try_on,
}
