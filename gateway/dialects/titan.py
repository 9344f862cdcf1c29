"""The Titan Image Generator (v1, v2) and Nova Canvas dialect.

Both share one envelope (titan-api.md §2-3):

    {"taskType": ..., "<task>Params": {...}, "imageGenerationConfig": {...}}

Nova Canvas adds `style` to text-to-image and the VIRTUAL_TRY_ON task. Those
exist only in Nova's table below, so a titan-dialect body never carries them
whatever the task holds. The gateway asks for one image per call
(numberOfImages 1, seed offset by the image index) so images stream back as
each finishes. Optional fields that are None or empty are left out: Bedrock
rejects empty strings. Masks follow the API's convention, which is Titan's,
and are sent unchanged.

The answer is `{"images": [b64, ...], "error": "...", "maskImage": b64}`
(§5): the first image wins; `error` with no image means the output filter
withheld it; Nova returns `maskImage` when the task set returnMask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

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
    ColorGuidedGeneration,
    ImageJob,
    ImageVariation,
    Inpainting,
    Outpainting,
    TextToImage,
    VirtualTryOn,
)
from gateway.enums import Dialect
from gateway.errors import BackendUnavailable, ImageFiltered

__all__ = ["build_body", "parse_response"]


def build_body(job: ImageJob, index: int) -> dict[str, object]:
    """The exact JSON body (before `json.dumps`) for image `index` of `job`."""
    shape = _shape(job)
    body: dict[str, object] = {
        "taskType": job.task_type.value,
        shape.params_field: shape.params(job.task),
    }
    if shape.config is not _Config.NONE:
        body["imageGenerationConfig"] = _generation_config(
            job, index, sized=shape.config is _Config.SIZED
        )
    return body


def parse_response(job: ImageJob, payload: bytes) -> GeneratedImage:
    """The first image of a 200 answer; the output filter may have withheld it."""
    result = json_object(payload)
    image = first(result, "images")
    if not image:
        if result.get("error"):
            raise ImageFiltered(str(result["error"]))
        raise BackendUnavailable(NO_IMAGE)
    return GeneratedImage(decode_b64(image), _returned_mask(job, result))


def _returned_mask(job: ImageJob, result: dict[str, Any]) -> bytes | None:
    task = job.task
    asked = isinstance(task, Inpainting | Outpainting | VirtualTryOn) and task.return_mask
    mask = result.get("maskImage")
    return decode_b64(mask) if asked and mask else None


def _shape(job: ImageJob) -> _Shape:
    shape = _SHAPES[job.model.dialect].get(type(job.task))
    if shape is None:  # validation only lets through tasks the model can run
        raise ValueError(f"the {job.model.dialect} dialect has no body for {job.task_type}")
    return shape


def _generation_config(job: ImageJob, index: int, *, sized: bool) -> Params:
    config = job.config
    out: Params = {"numberOfImages": 1, "seed": job.seed_for(index)}
    if config.cfg_scale is not None:  # None: the model's default
        out["cfgScale"] = config.cfg_scale
    out["quality"] = config.quality.value
    if sized and config.send_size:
        out["width"] = config.width
        out["height"] = config.height
    return out


def _flag(value: bool) -> bool | None:
    """Booleans that default to false are sent only when true."""
    return True if value else None


def _text_to_image(task: TextToImage) -> Params:
    return present(
        text=task.text,
        negativeText=task.negative_text,
        conditionImage=b64(task.condition_image),
        controlMode=task.control_mode.value if task.control_mode else None,
        controlStrength=task.control_strength,
    )


def _nova_text_to_image(task: TextToImage) -> Params:
    return _text_to_image(task) | present(style=task.style)


def _inpainting(task: Inpainting) -> Params:
    return present(
        image=b64(task.image),
        maskPrompt=task.mask_prompt,
        maskImage=b64(task.mask_image),
        text=task.text,
        negativeText=task.negative_text,
        returnMask=_flag(task.return_mask),
    )


def _outpainting(task: Outpainting) -> Params:
    return present(
        image=b64(task.image),
        maskPrompt=task.mask_prompt,
        maskImage=b64(task.mask_image),
        text=task.text,
        negativeText=task.negative_text,
        outPaintingMode=task.mode.value,
        returnMask=_flag(task.return_mask),
    )


def _image_variation(task: ImageVariation) -> Params:
    return present(
        images=[b64(image) for image in task.images],
        text=task.text,
        negativeText=task.negative_text,
        similarityStrength=task.similarity_strength,
    )


def _color_guided(task: ColorGuidedGeneration) -> Params:
    return present(
        text=task.text,
        negativeText=task.negative_text,
        colors=list(task.colors),
        referenceImage=b64(task.reference_image),
    )


def _background_removal(task: BackgroundRemoval) -> Params:
    return {"image": b64(task.image)}


def _virtual_try_on(task: VirtualTryOn) -> Params:
    """virtualTryOnParams (titan-api.md §3): one mask object, chosen by maskType."""
    mask_field, build_mask = _TRY_ON_MASKS.get(task.mask_type, (None, None))
    if mask_field is None or build_mask is None:
        raise ValueError(f"unknown virtual try-on mask type {task.mask_type!r}")
    return {
        "sourceImage": b64(task.source_image),
        "referenceImage": b64(task.reference_image),
        "maskType": task.mask_type,
        mask_field: build_mask(task),
    } | present(
        maskExclusions=present(
            preserveBodyPose=task.preserve_body_pose,
            preserveHands=task.preserve_hands,
            preserveFace=task.preserve_face,
        ),
        mergeStyle=task.merge_style,
        returnMask=_flag(task.return_mask),
    )


def _image_mask(task: VirtualTryOn) -> Params:
    return present(maskImage=b64(task.mask_image))


def _garment_mask(task: VirtualTryOn) -> Params:
    return present(
        maskShape=task.mask_shape,
        garmentClass=task.garment_class,
        garmentStyling=present(
            longSleeveStyle=task.long_sleeve_style,
            tuckingStyle=task.tucking_style,
            outerLayerStyle=task.outer_layer_style,
        ),
    )


def _prompt_mask(task: VirtualTryOn) -> Params:
    return present(maskShape=task.mask_shape, maskPrompt=task.mask_prompt)


_TRY_ON_MASKS: Mapping[str, tuple[str, Callable[[VirtualTryOn], Params]]] = {
    "IMAGE": ("imageBasedMask", _image_mask),
    "GARMENT": ("garmentBasedMask", _garment_mask),
    "PROMPT": ("promptBasedMask", _prompt_mask),
}


class _Config(Enum):
    """Which imageGenerationConfig a task takes."""

    SIZED = "sized"  # width/height too, when the job sends a size
    UNSIZED = "unsized"  # never width/height (Nova forbids them for try-on)
    NONE = "none"  # no imageGenerationConfig at all


@dataclass(frozen=True)
class _Shape:
    """How one task class is laid out in the body."""

    params_field: str
    # Each builder takes its own task class; the tables are keyed by that
    # class, so the erased argument type is safe.
    params: Callable[[Any], Params]
    config: _Config = _Config.SIZED


_TITAN_SHAPES: Mapping[type, _Shape] = {
    TextToImage: _Shape("textToImageParams", _text_to_image),
    Inpainting: _Shape("inPaintingParams", _inpainting),
    Outpainting: _Shape("outPaintingParams", _outpainting),
    ImageVariation: _Shape("imageVariationParams", _image_variation),
    ColorGuidedGeneration: _Shape("colorGuidedGenerationParams", _color_guided),
    # Background removal takes no generation settings at all.
    BackgroundRemoval: _Shape("backgroundRemovalParams", _background_removal, _Config.NONE),
}
_NOVA_SHAPES: Mapping[type, _Shape] = {
    **_TITAN_SHAPES,
    TextToImage: _Shape("textToImageParams", _nova_text_to_image),
    VirtualTryOn: _Shape("virtualTryOnParams", _virtual_try_on, _Config.UNSIZED),
}
_SHAPES: Mapping[Dialect, Mapping[type, _Shape]] = {
    Dialect.TITAN: _TITAN_SHAPES,
    Dialect.NOVA_CANVAS: _NOVA_SHAPES,
}
