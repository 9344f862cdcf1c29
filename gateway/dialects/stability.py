"""The Stability AI dialect: Stable Image Ultra and Core, Stable Diffusion 3.5
Large, and the 13 Image Services.

All of them take one flat JSON object and answer
`{"seeds": [int], "finish_reasons": [null | str], "images": [b64]}`; which
fields a body holds depends on the task (one row per task in `_SERVICES`).
Field names and which services take `seed` and `negative_prompt` follow
AWS's pages (bedrock-image-models.md §2-3):

- model-parameters-diffusion-stable-ultra-text-image-request-response.html,
  model-parameters-diffusion-3-5-large.html and the Stable Image Core page
  for the generation models;
- stable-image-services.html for the Image Services. There, `prompt` is a
  *required* field of Inpaint, Search and Replace/Recolor, Control
  Sketch/Structure, Style Guide and the Conservative/Creative upscales
  ("Minimum 0" characters); Fast Upscale takes only `image` and
  `output_format`, Remove Background only `image` (+ `output_format`), and
  neither lists `seed`; Erase lists no prompt; Outpaint lists no
  `negative_prompt`; Conservative Upscale and Style Transfer list no
  `style_preset`.

A required prompt comes from the task's text; when the task has none the
field is left out and Bedrock's own validation answers (the gateway's
validation should refuse it first). Inpaint has no `mask_prompt`: only a mask
image (or the input's alpha channel) marks the region.

Masks: the API has one convention, Titan's (black = the region to replace or
erase). Stability repaints white and keeps black, so masks are inverted here.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from gateway.dialects.base import (
    NO_IMAGE,
    GeneratedImage,
    Params,
    b64,
    decode_b64,
    first,
    json_object,
    present,
)
from gateway.domain import (
    BackgroundRemoval,
    ConservativeUpscale,
    CreativeUpscale,
    EraseObject,
    ExpandCanvas,
    FastUpscale,
    ImageJob,
    ImageToImage,
    Inpainting,
    InputImage,
    SearchAndRecolor,
    SearchAndReplace,
    StyleGuide,
    StyleTransfer,
    TextToImage,
)
from gateway.enums import TaskType
from gateway.errors import BackendUnavailable, ContentBlocked, GatewayError, ImageFiltered

__all__ = ["DEFAULT_STRENGTH", "build_body", "invert_mask", "parse_response"]

# Ultra documents image-to-image `strength` as optional with default 0.35;
# SD3.5 requires it. Sending the same default keeps both explicit.
DEFAULT_STRENGTH = 0.35

# `mode` per (model, task). SD3.5 Large defaults to text-to-image and needs
# "image-to-image" with image + strength; for text-to-image nothing is sent.
# Ultra documents `mode` with the single value "text-to-image" and does not say
# what its image-to-image call sends, so it gets none (unconfirmed). Core has
# no image-to-image.
_MODES: Mapping[tuple[str, TaskType], str] = {
    ("stability.sd3-5-large-v1:0", TaskType.IMAGE_TO_IMAGE): "image-to-image",
}


def build_body(job: ImageJob, index: int) -> dict[str, object]:
    """The exact JSON body (before `json.dumps`) for image `index` of `job`."""
    task_type = job.task_type
    service = _SERVICES.get(task_type)
    if service is None:  # validation only lets through tasks the model can run
        raise ValueError(f"the stability dialect has no body for {task_type}")
    body: dict[str, object] = service.params(job.task)
    config = job.config
    body |= present(
        mode=_MODES.get((job.model.model_id, task_type)),
        aspect_ratio=config.aspect_ratio if service.aspect_ratio else None,
        seed=job.seed_for(index) if service.seeded else None,
    )
    body["output_format"] = config.output_format.value
    return body


def parse_response(job: ImageJob, payload: bytes) -> GeneratedImage:
    """The image of a 200 answer, or the failure its finish reason names.

    A filtered answer may carry only `finish_reasons` (no `seeds`, no
    `images`), so the reason is read before anything else.
    """
    result = json_object(payload)
    reason = first(result, "finish_reasons")
    if reason is not None:
        raise _finish_error(str(reason))
    image = first(result, "images")
    if not image:
        raise BackendUnavailable(NO_IMAGE)
    return GeneratedImage(decode_b64(image))


def invert_mask(mask: InputImage) -> str:
    """A mask in the API's convention (black = repaint) as Stability's
    (white = repaint): greyscale, inverted, PNG, base64."""
    with Image.open(io.BytesIO(mask.data)) as source:
        inverted = ImageOps.invert(source.convert("L"))
    out = io.BytesIO()
    inverted.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def _finish_error(reason: str) -> GatewayError:
    make = _FINISH_REASONS.get(reason)
    if make is None:
        return BackendUnavailable(f"the model stopped without an image: {reason}")
    return make(reason)


def _input_blocked(what: str) -> Callable[[str], GatewayError]:
    def blocked(reason: str) -> GatewayError:
        return ContentBlocked(
            f"This request has been blocked by the content filter on {what} ({reason})"
        )

    return blocked


_FINISH_REASONS: Mapping[str, Callable[[str], GatewayError]] = {
    "Filter reason: prompt": _input_blocked("the prompt"),
    "Filter reason: input image": _input_blocked("an input image"),
    "Filter reason: output image": lambda reason: ImageFiltered(
        f"The generated image has been blocked by the content filter ({reason})"
    ),
    "Inference error": lambda reason: BackendUnavailable(f"the model failed: {reason}"),
}


def _mask(image: InputImage | None) -> str | None:
    return None if image is None else invert_mask(image)


def _text_to_image(task: TextToImage) -> Params:
    return present(prompt=task.text, negative_prompt=task.negative_text)


def _image_to_image(task: ImageToImage) -> Params:
    strength = DEFAULT_STRENGTH if task.strength is None else task.strength
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        image=b64(task.image),
        strength=strength,
    )


def _control(task: TextToImage) -> Params:
    """Control Sketch / Structure: text-to-image conditioned on an image."""
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        image=b64(task.condition_image),
        control_strength=task.control_strength,
        style_preset=task.style,
    )


def _inpaint(task: Inpainting) -> Params:
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        image=b64(task.image),
        mask=_mask(task.mask_image),
        grow_mask=task.grow_mask,
        style_preset=task.style,
    )


def _erase(task: EraseObject) -> Params:
    return present(image=b64(task.image), mask=_mask(task.mask_image), grow_mask=task.grow_mask)


def _search_replace(task: SearchAndReplace) -> Params:
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        image=b64(task.image),
        search_prompt=task.search_prompt,
        grow_mask=task.grow_mask,
        style_preset=task.style,
    )


def _search_recolor(task: SearchAndRecolor) -> Params:
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        image=b64(task.image),
        select_prompt=task.select_prompt,
        grow_mask=task.grow_mask,
        style_preset=task.style,
    )


def _background_removal(task: BackgroundRemoval) -> Params:
    return {"image": b64(task.image)}


def _style_guide(task: StyleGuide) -> Params:
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        image=b64(task.image),
        fidelity=task.fidelity,
        style_preset=task.style,
    )


def _style_transfer(task: StyleTransfer) -> Params:
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        init_image=b64(task.image),
        style_image=b64(task.style_image),
        style_strength=task.style_strength,
        composition_fidelity=task.composition_fidelity,
        change_strength=task.change_strength,
    )


def _outpaint(task: ExpandCanvas) -> Params:
    # Only the sides that grow: AWS requires at least one non-zero side and
    # documents 0 as every side's default.
    sides = {"left": task.left, "right": task.right, "up": task.up, "down": task.down}
    return present(
        prompt=task.text,
        image=b64(task.image),
        creativity=task.creativity,
        style_preset=task.style,
    ) | {side: pixels for side, pixels in sides.items() if pixels}


def _fast_upscale(task: FastUpscale) -> Params:
    return {"image": b64(task.image)}


def _conservative_upscale(task: ConservativeUpscale) -> Params:
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        image=b64(task.image),
        creativity=task.creativity,
    )


def _creative_upscale(task: CreativeUpscale) -> Params:
    return present(
        prompt=task.text,
        negative_prompt=task.negative_text,
        image=b64(task.image),
        creativity=task.creativity,
        style_preset=task.style,
    )


@dataclass(frozen=True)
class _Service:
    """How one task is laid out: its own fields, plus which shared ones it takes."""

    # Each builder takes the task class its TaskType decodes to; the table is
    # keyed by that type, so the erased argument type is safe.
    params: Callable[[Any], Params]
    seeded: bool = True  # takes `seed`
    aspect_ratio: bool = False  # takes `aspect_ratio` (text-to-image only)


_SERVICES: Mapping[TaskType, _Service] = {
    TaskType.TEXT_IMAGE: _Service(_text_to_image, aspect_ratio=True),
    TaskType.IMAGE_TO_IMAGE: _Service(_image_to_image),
    TaskType.CONTROL_SKETCH: _Service(_control),
    TaskType.CONTROL_STRUCTURE: _Service(_control),
    TaskType.INPAINTING: _Service(_inpaint),
    TaskType.ERASE_OBJECT: _Service(_erase),
    TaskType.SEARCH_AND_REPLACE: _Service(_search_replace),
    TaskType.SEARCH_AND_RECOLOR: _Service(_search_recolor),
    TaskType.BACKGROUND_REMOVAL: _Service(_background_removal, seeded=False),
    # Style Guide documents aspect_ratio although it takes an input image.
    TaskType.STYLE_GUIDE: _Service(_style_guide, aspect_ratio=True),
    TaskType.STYLE_TRANSFER: _Service(_style_transfer),
    TaskType.EXPAND_CANVAS: _Service(_outpaint),
    TaskType.FAST_UPSCALE: _Service(_fast_upscale, seeded=False),
    TaskType.CONSERVATIVE_UPSCALE: _Service(_conservative_upscale),
    TaskType.CREATIVE_UPSCALE: _Service(_creative_upscale),
}
