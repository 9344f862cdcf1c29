"""The Bedrock InvokeModel JSON body for one image of a job (Titan and Nova Canvas).

Titan Image Generator and Nova Canvas share one envelope:

    {"taskType": ..., "<task>Params": {...}, "imageGenerationConfig": {...}}

The gateway asks for one image per call (numberOfImages 1, seed offset by the
image index) so images stream back as each finishes. Optional fields that are
None or empty are left out: Bedrock rejects empty strings.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.domain import (
    BackgroundRemoval,
    ColorGuidedGeneration,
    ImageJob,
    ImageVariation,
    Inpainting,
    InputImage,
    Outpainting,
    TextToImage,
)

__all__ = ["build_body"]

Params = dict[str, object]


def build_body(job: ImageJob, index: int) -> dict[str, object]:
    """The exact JSON body (before `json.dumps`) for image `index` of `job`."""
    shape = _SHAPES[type(job.task)]
    body: dict[str, object] = {
        "taskType": job.task_type.value,
        shape.params_field: shape.params(job.task),
    }
    if shape.generation_config:
        body["imageGenerationConfig"] = _generation_config(job, index)
    return body


def _generation_config(job: ImageJob, index: int) -> Params:
    config = job.config
    out: Params = {
        "numberOfImages": 1,
        "seed": job.seed_for(index),
        "cfgScale": config.cfg_scale,
        "quality": config.quality.value,
    }
    if config.send_size:
        out["width"] = config.width
        out["height"] = config.height
    return out


def _text_to_image(task: TextToImage) -> Params:
    return _present(
        text=task.text,
        negativeText=task.negative_text,
        conditionImage=_b64(task.condition_image),
        controlMode=task.control_mode.value if task.control_mode else None,
        controlStrength=task.control_strength,
    )


def _inpainting(task: Inpainting) -> Params:
    return _present(
        image=_b64(task.image),
        maskPrompt=task.mask_prompt,
        maskImage=_b64(task.mask_image),
        text=task.text,
        negativeText=task.negative_text,
    )


def _outpainting(task: Outpainting) -> Params:
    return _present(
        image=_b64(task.image),
        maskPrompt=task.mask_prompt,
        maskImage=_b64(task.mask_image),
        text=task.text,
        negativeText=task.negative_text,
        outPaintingMode=task.mode.value,
    )


def _image_variation(task: ImageVariation) -> Params:
    return _present(
        images=[_b64(image) for image in task.images],
        text=task.text,
        negativeText=task.negative_text,
        similarityStrength=task.similarity_strength,
    )


def _color_guided(task: ColorGuidedGeneration) -> Params:
    return _present(
        text=task.text,
        negativeText=task.negative_text,
        colors=list(task.colors),
        referenceImage=_b64(task.reference_image),
    )


def _background_removal(task: BackgroundRemoval) -> Params:
    return {"image": _b64(task.image)}


def _b64(image: InputImage | None) -> str | None:
    return None if image is None else base64.b64encode(image.data).decode("ascii")


def _present(**fields: object) -> Params:
    """The fields that carry a value; None, "" and empty lists are left out (0 is kept)."""
    return {
        name: value
        for name, value in fields.items()
        if value is not None and value != "" and value != []
    }


@dataclass(frozen=True)
class _Shape:
    """How one task class is laid out in the body."""

    params_field: str
    # Each builder takes its own task class; the table is keyed by that class,
    # so the erased argument type is safe.
    params: Callable[[Any], Params]
    generation_config: bool = True


_SHAPES: dict[type, _Shape] = {
    TextToImage: _Shape("textToImageParams", _text_to_image),
    Inpainting: _Shape("inPaintingParams", _inpainting),
    Outpainting: _Shape("outPaintingParams", _outpainting),
    ImageVariation: _Shape("imageVariationParams", _image_variation),
    ColorGuidedGeneration: _Shape("colorGuidedGenerationParams", _color_guided),
    # Background removal takes no generation settings at all.
    BackgroundRemoval: _Shape("backgroundRemovalParams", _background_removal, False),
}
