"""Request validation with Bedrock's rules for Titan v1, Titan v2 and Nova Canvas.

The gateway is only as correct as the emulator is strict: every request Bedrock
would refuse must be refused here too, with the same error type and the same
``Malformed input request: #/path: reason`` wording. Schema rules are data
(``schema.Field``); the cross-field rules the schema cannot express follow.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from PIL import Image

from gateway.emulator import models as m
from gateway.emulator import tryon
from gateway.emulator.errors import malformed
from gateway.emulator.images import ImageRules, decode_image, mask_region
from gateway.emulator.schema import ARRAY, BOOLEAN, INTEGER, NUMBER, OBJECT, STRING, Field, check

COLOR_PATTERN = "^#[0-9a-fA-F]{6}$"
_IMAGE = Field(STRING, min_length=1)


@dataclass(frozen=True)
class GenerationConfig:
    """imageGenerationConfig after defaults were applied."""

    width: int
    height: int
    number_of_images: int
    seed: int
    quality: str
    cfg_scale: float


@dataclass(frozen=True, eq=False)
class ValidatedRequest:
    """A request that passed every rule, with its images decoded."""

    model: m.ModelSpec
    task: str
    generation: GenerationConfig | None
    text: str = ""
    negative_text: str = ""
    image: Image.Image | None = None
    mask: Image.Image | None = None  # L mode, 255 where the request's mask is black
    mask_prompt: str | None = None
    out_painting_mode: str = "DEFAULT"
    return_mask: bool = False
    condition_image: Image.Image | None = None
    control_mode: str = "CANNY_EDGE"
    control_strength: float = 0.7
    style: str | None = None
    reference_image: Image.Image | None = None
    images: tuple[Image.Image, ...] = ()
    similarity_strength: float = 0.7
    colors: tuple[tuple[int, int, int], ...] = ()
    try_on: tryon.TryOnParams | None = None  # VIRTUAL_TRY_ON; `image` is its sourceImage

    @property
    def seeds(self) -> tuple[int, ...]:
        """One seed per requested image: seed, seed+1, ..."""
        if self.generation is None:
            return (0,)
        base = self.generation.seed
        return tuple(base + i for i in range(self.generation.number_of_images))

    @property
    def output_size(self) -> tuple[int, int]:
        """Edits keep the input's size; generation uses the configured size."""
        if self.image is not None:
            return self.image.size
        assert self.generation is not None
        return (self.generation.width, self.generation.height)


def validate_request(model: m.ModelSpec, body: dict[str, Any]) -> ValidatedRequest:
    """Check `body` against `model`'s rules; raise EmulatorError on the first violation."""
    if "taskType" not in body:
        raise malformed("#", "required key [taskType] not found")
    check(body["taskType"], Field(STRING, enum=model.tasks), "#/taskType")
    task: str = body["taskType"]
    check(body, body_schema(model, task))
    params: dict[str, Any] = body[m.PARAMS_FIELD[task]]
    generation = _generation(model, task, body.get("imageGenerationConfig", {}))
    return _TASK_BUILDERS[task](model, task, params, generation)


# ---------------------------------------------------------------- schemas


def _text(model: m.ModelSpec, required: bool = False) -> Field:
    return Field(STRING, required=required, min_length=1, max_length=model.max_text)


@functools.cache
def body_schema(model: m.ModelSpec, task: str) -> Field:
    """The whole-body schema for one model and task type."""
    props: dict[str, Field] = {
        "taskType": Field(STRING, required=True, enum=model.tasks),
        m.PARAMS_FIELD[task]: params_schema(model, task),
    }
    if task != m.BACKGROUND_REMOVAL:
        props["imageGenerationConfig"] = generation_schema(model, task)
    return Field(OBJECT, properties=props)


def params_schema(model: m.ModelSpec, task: str) -> Field:
    """The `<task>Params` object's schema."""
    props = _PARAMS_BUILDERS[task](model)
    return Field(OBJECT, required=True, properties=props)


def _text_image_props(model: m.ModelSpec) -> dict[str, Field]:
    props = {"text": _text(model, required=True), "negativeText": _text(model)}
    if model.family is not m.Family.TITAN_V1:
        props["conditionImage"] = _IMAGE
        props["controlMode"] = Field(STRING, enum=("CANNY_EDGE", "SEGMENTATION"))
        props["controlStrength"] = Field(NUMBER, minimum=0.0, maximum=1.0)
    if model.is_nova:
        props["style"] = Field(STRING, enum=m.NOVA_STYLES)
    return props


def _edit_props(model: m.ModelSpec, text_required: bool) -> dict[str, Field]:
    return {
        "image": Field(STRING, required=True, min_length=1),
        "maskPrompt": _text(model),
        "maskImage": _IMAGE,
        "text": _text(model, required=text_required),
        "negativeText": _text(model),
        "returnMask": Field(BOOLEAN),
    }


def _inpainting_props(model: m.ModelSpec) -> dict[str, Field]:
    return _edit_props(model, text_required=False)


def _outpainting_props(model: m.ModelSpec) -> dict[str, Field]:
    # Titan requires text for outpainting; Nova documents omitting it.
    props = _edit_props(model, text_required=not model.is_nova)
    props["outPaintingMode"] = Field(STRING, enum=("DEFAULT", "PRECISE"))
    return props


def _variation_props(model: m.ModelSpec) -> dict[str, Field]:
    return {
        "images": Field(ARRAY, required=True, items=_IMAGE, min_items=1, max_items=m.MAX_IMAGES),
        "text": _text(model),
        "negativeText": _text(model),
        "similarityStrength": Field(NUMBER, minimum=0.2, maximum=1.0),
    }


def _color_props(model: m.ModelSpec) -> dict[str, Field]:
    color = Field(STRING, pattern=COLOR_PATTERN)
    return {
        "text": _text(model, required=True),
        "negativeText": _text(model),
        "colors": Field(ARRAY, required=True, items=color, min_items=1, max_items=10),
        "referenceImage": _IMAGE,
    }


def _background_props(model: m.ModelSpec) -> dict[str, Field]:
    return {"image": Field(STRING, required=True, min_length=1)}


_PARAMS_BUILDERS = {
    m.TEXT_IMAGE: _text_image_props,
    m.INPAINTING: _inpainting_props,
    m.OUTPAINTING: _outpainting_props,
    m.IMAGE_VARIATION: _variation_props,
    m.COLOR_GUIDED_GENERATION: _color_props,
    m.BACKGROUND_REMOVAL: _background_props,
    m.VIRTUAL_TRY_ON: tryon.try_on_props,  # Nova Canvas only: see models.MODELS
}


def generation_schema(model: m.ModelSpec, task: str) -> Field:
    """imageGenerationConfig; Nova forbids width/height on edit and try-on tasks."""
    props = {
        "numberOfImages": Field(INTEGER, minimum=1, maximum=m.MAX_IMAGES),
        "quality": Field(STRING, enum=("standard", "premium")),
        "cfgScale": Field(NUMBER, minimum=1.1, maximum=10.0),
        "seed": Field(INTEGER, minimum=0, maximum=m.MAX_SEED),
    }
    if not (model.is_nova and task in (m.INPAINTING, m.OUTPAINTING, m.VIRTUAL_TRY_ON)):
        props["width"] = Field(INTEGER)
        props["height"] = Field(INTEGER)
    return Field(OBJECT, properties=props)


# ---------------------------------------------------------- cross-field rules


def _generation(model: m.ModelSpec, task: str, raw: dict[str, Any]) -> GenerationConfig | None:
    if task == m.BACKGROUND_REMOVAL:
        return None
    width = int(raw.get("width", model.default_size[0]))
    height = int(raw.get("height", model.default_size[1]))
    if "width" in raw or "height" in raw:
        problem = (m.nova_size_problem if model.is_nova else m.titan_size_problem)(width, height)
        if problem is not None:
            raise malformed("#/imageGenerationConfig", problem)
    return GenerationConfig(
        width=width,
        height=height,
        number_of_images=int(raw.get("numberOfImages", 1)),
        seed=int(raw.get("seed", model.default_seed)),
        quality=str(raw.get("quality", "standard")),
        cfg_scale=float(raw.get("cfgScale", model.default_cfg_scale)),
    )


def _image_rules(model: m.ModelSpec) -> ImageRules:
    if model.is_nova:
        return ImageRules(max_side=None, nova=True)
    return ImageRules(max_side=m.TITAN_MAX_INPUT_SIDE, nova=False)


def _decode(model: m.ModelSpec, params: dict[str, Any], key: str, base: str) -> Image.Image | None:
    if key not in params:
        return None
    return decode_image(params[key], f"{base}/{key}", _image_rules(model))


def _build_text_image(
    model: m.ModelSpec, task: str, params: dict[str, Any], gen: GenerationConfig | None
) -> ValidatedRequest:
    base = "#/textToImageParams"
    if "conditionImage" not in params and ("controlMode" in params or "controlStrength" in params):
        raise malformed(
            base, "conditionImage is required when controlMode or controlStrength is set"
        )
    return ValidatedRequest(
        model,
        task,
        gen,
        text=params["text"],
        negative_text=params.get("negativeText", ""),
        condition_image=_decode(model, params, "conditionImage", base),
        control_mode=params.get("controlMode", "CANNY_EDGE"),
        control_strength=float(params.get("controlStrength", 0.7)),
        style=params.get("style"),
    )


def _build_edit(
    model: m.ModelSpec, task: str, params: dict[str, Any], gen: GenerationConfig | None
) -> ValidatedRequest:
    base = f"#/{m.PARAMS_FIELD[task]}"
    if ("maskPrompt" in params) == ("maskImage" in params):
        raise malformed(base, "exactly one of [maskPrompt, maskImage] must be provided")
    image = _decode(model, params, "image", base)
    assert image is not None
    raw_mask = _decode(model, params, "maskImage", base)
    mask = None if raw_mask is None else mask_region(raw_mask, image.size, f"{base}/maskImage")
    return ValidatedRequest(
        model,
        task,
        gen,
        text=params.get("text", ""),
        negative_text=params.get("negativeText", ""),
        image=image,
        mask=mask,
        mask_prompt=params.get("maskPrompt"),
        out_painting_mode=params.get("outPaintingMode", "DEFAULT"),
        return_mask=bool(params.get("returnMask", False)),
    )


def _build_variation(
    model: m.ModelSpec, task: str, params: dict[str, Any], gen: GenerationConfig | None
) -> ValidatedRequest:
    base = "#/imageVariationParams/images"
    rules = _image_rules(model)
    images = tuple(
        decode_image(data, f"{base}/{i}", rules) for i, data in enumerate(params["images"])
    )
    return ValidatedRequest(
        model,
        task,
        gen,
        text=params.get("text", ""),
        negative_text=params.get("negativeText", ""),
        images=images,
        similarity_strength=float(params.get("similarityStrength", 0.7)),
    )


def _build_color(
    model: m.ModelSpec, task: str, params: dict[str, Any], gen: GenerationConfig | None
) -> ValidatedRequest:
    colors = tuple(_parse_color(c) for c in params["colors"])
    return ValidatedRequest(
        model,
        task,
        gen,
        text=params["text"],
        negative_text=params.get("negativeText", ""),
        reference_image=_decode(model, params, "referenceImage", "#/colorGuidedGenerationParams"),
        colors=colors,
    )


def _build_background(
    model: m.ModelSpec, task: str, params: dict[str, Any], gen: GenerationConfig | None
) -> ValidatedRequest:
    image = _decode(model, params, "image", "#/backgroundRemovalParams")
    return ValidatedRequest(model, task, gen, image=image)


def _build_try_on(
    model: m.ModelSpec, task: str, params: dict[str, Any], gen: GenerationConfig | None
) -> ValidatedRequest:
    parsed = tryon.parse_try_on(params, _image_rules(model))
    return ValidatedRequest(
        model,
        task,
        gen,
        image=parsed.source,
        mask=parsed.mask,
        mask_prompt=parsed.mask_prompt,
        return_mask=parsed.return_mask,
        reference_image=parsed.reference,
        try_on=parsed.params,
    )


def _parse_color(code: str) -> tuple[int, int, int]:
    return (int(code[1:3], 16), int(code[3:5], 16), int(code[5:7], 16))


_TASK_BUILDERS = {
    m.TEXT_IMAGE: _build_text_image,
    m.INPAINTING: _build_edit,
    m.OUTPAINTING: _build_edit,
    m.IMAGE_VARIATION: _build_variation,
    m.COLOR_GUIDED_GENERATION: _build_color,
    m.BACKGROUND_REMOVAL: _build_background,
    m.VIRTUAL_TRY_ON: _build_try_on,
}
