"""Decoders of the tasks only Stability models run: image-to-image, the three
upscales, search and replace / recolor, erase, expand canvas, style guide and
style transfer (bedrock-image-models.md §2-3; ranges from tasks.proto).

Text-to-image (also Control Sketch / Structure) and inpainting, which
Stability shares with Titan and Nova Canvas, are in `tasks`. Optional numbers
left unset stay None: the dialect sends nothing (or the documented default).
"""

from __future__ import annotations

from gateway.domain import (
    ConservativeUpscale,
    CreativeUpscale,
    EraseObject,
    ExpandCanvas,
    FastUpscale,
    ImageToImage,
    SearchAndRecolor,
    SearchAndReplace,
    StyleGuide,
    StyleTransfer,
)
from gateway.validation.decoded import Decoded, Decoder, pair
from gateway.validation.fields import (
    bounded_int,
    grow_mask,
    optional_float,
    optional_text,
    required_text,
    style,
)
from gateway.validation.images import check_image, check_mask
from gateway.validation.violations import Context
from titan.gateway.v1 import tasks_pb2

MAX_EXPAND_SIDE = 2000
EXPAND_SIDES = ("left", "right", "up", "down")


def _prompts(ctx: Context, name: str, text: str, negative: str) -> tuple[str, str | None]:
    """A required `text` and an optional `negative_text`."""
    return (
        required_text(ctx, f"{name}.text", text),
        optional_text(ctx, f"{name}.negative_text", negative),
    )


def _image_to_image(ctx: Context, task: tasks_pb2.ImageToImageTask) -> Decoded:
    image = check_image(ctx, "image_to_image.image", task.image)
    text, negative = _prompts(ctx, "image_to_image", task.text, task.negative_text)
    strength = optional_float(ctx, "image_to_image", task, "strength", 0.0, 1.0)
    return pair(image, lambda img: ImageToImage(img, text, negative, strength))


def _fast_upscale(ctx: Context, task: tasks_pb2.FastUpscaleTask) -> Decoded:
    return pair(check_image(ctx, "fast_upscale.image", task.image), FastUpscale)


def _conservative_upscale(ctx: Context, task: tasks_pb2.ConservativeUpscaleTask) -> Decoded:
    name = "conservative_upscale"
    image = check_image(ctx, f"{name}.image", task.image)
    text, negative = _prompts(ctx, name, task.text, task.negative_text)
    # AWS's Image Services page: 0.1-0.5, default 0.35.
    creativity = optional_float(ctx, name, task, "creativity", 0.1, 0.5)
    return pair(image, lambda img: ConservativeUpscale(img, text, negative, creativity))


def _creative_upscale(ctx: Context, task: tasks_pb2.CreativeUpscaleTask) -> Decoded:
    name = "creative_upscale"
    image = check_image(ctx, f"{name}.image", task.image)
    text, negative = _prompts(ctx, name, task.text, task.negative_text)
    creativity = optional_float(ctx, name, task, "creativity", 0.1, 0.5)
    chosen = style(ctx, f"{name}.style", task.style)
    return pair(image, lambda img: CreativeUpscale(img, text, negative, creativity, chosen))


def _search_and_replace(ctx: Context, task: tasks_pb2.SearchAndReplaceTask) -> Decoded:
    name = "search_and_replace"
    image = check_image(ctx, f"{name}.image", task.image)
    search = required_text(ctx, f"{name}.search_prompt", task.search_prompt)
    text, negative = _prompts(ctx, name, task.text, task.negative_text)
    grow = grow_mask(ctx, name, task)
    chosen = style(ctx, f"{name}.style", task.style)
    return pair(image, lambda img: SearchAndReplace(img, search, text, negative, grow, chosen))


def _search_and_recolor(ctx: Context, task: tasks_pb2.SearchAndRecolorTask) -> Decoded:
    name = "search_and_recolor"
    image = check_image(ctx, f"{name}.image", task.image)
    select = required_text(ctx, f"{name}.select_prompt", task.select_prompt)
    text, negative = _prompts(ctx, name, task.text, task.negative_text)
    grow = grow_mask(ctx, name, task)
    chosen = style(ctx, f"{name}.style", task.style)
    return pair(image, lambda img: SearchAndRecolor(img, select, text, negative, grow, chosen))


def _erase_object(ctx: Context, task: tasks_pb2.EraseObjectTask) -> Decoded:
    image = check_image(ctx, "erase_object.image", task.image)
    mask = None
    if task.mask_image:  # optional: without it the image's transparent pixels are erased
        field = "erase_object.mask_image"
        mask = check_mask(ctx, field, task.mask_image, image, "erase_object.image")
        if mask is None:
            return Decoded(None, image)
    grow = grow_mask(ctx, "erase_object", task)
    return pair(image, lambda img: EraseObject(img, mask, grow))


def _expand_canvas(ctx: Context, task: tasks_pb2.ExpandCanvasTask) -> Decoded:
    name = "expand_canvas"
    image = check_image(ctx, f"{name}.image", task.image)
    sides: dict[str, int] = {side: getattr(task, side) for side in EXPAND_SIDES}
    for side, pixels in sides.items():
        bounded_int(ctx, f"{name}.{side}", pixels, 0, MAX_EXPAND_SIDE)
    if not any(sides.values()):
        ctx.add(name, "at least one of left, right, up or down must be above 0 pixels")
    text = optional_text(ctx, f"{name}.text", task.text)
    creativity = optional_float(ctx, name, task, "creativity", 0.1, 1.0)
    chosen = style(ctx, f"{name}.style", task.style)
    return pair(
        image,
        lambda img: ExpandCanvas(img, **sides, text=text, creativity=creativity, style=chosen),
    )


def _style_guide(ctx: Context, task: tasks_pb2.StyleGuideTask) -> Decoded:
    image = check_image(ctx, "style_guide.image", task.image)
    text, negative = _prompts(ctx, "style_guide", task.text, task.negative_text)
    fidelity = optional_float(ctx, "style_guide", task, "fidelity", 0.0, 1.0)
    chosen = style(ctx, "style_guide.style", task.style)
    # The output size comes from the config (an aspect ratio), not from the guide.
    return pair(image, lambda img: StyleGuide(img, text, negative, fidelity, chosen))


def _style_transfer(ctx: Context, task: tasks_pb2.StyleTransferTask) -> Decoded:
    name = "style_transfer"
    image = check_image(ctx, f"{name}.image", task.image)
    style_image = check_image(ctx, f"{name}.style_image", task.style_image)
    text = optional_text(ctx, f"{name}.text", task.text)
    negative = optional_text(ctx, f"{name}.negative_text", task.negative_text)
    strength = optional_float(ctx, name, task, "style_strength", 0.0, 1.0)
    composition = optional_float(ctx, name, task, "composition_fidelity", 0.0, 1.0)
    change = optional_float(ctx, name, task, "change_strength", 0.1, 1.0)
    if image is None or style_image is None:
        return Decoded(None, image)
    transfer = StyleTransfer(image, style_image, text, negative, strength, composition, change)
    return Decoded(transfer, image)


STABILITY_DECODERS: dict[str, Decoder] = {
    "image_to_image": _image_to_image,
    "fast_upscale": _fast_upscale,
    "conservative_upscale": _conservative_upscale,
    "creative_upscale": _creative_upscale,
    "search_and_replace": _search_and_replace,
    "search_and_recolor": _search_and_recolor,
    "erase_object": _erase_object,
    "expand_canvas": _expand_canvas,
    "style_guide": _style_guide,
    "style_transfer": _style_transfer,
}
