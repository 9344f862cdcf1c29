"""Request validation for the Stability AI dialect on Bedrock.

Covers the three text-to-image models (Stable Image Ultra 1.1, Stable Image
Core 1.1, SD3.5 Large) and the thirteen Stability AI Image Services. They
share one flat body (``{"prompt": ..., "seed": ..., ...}``) and one response
(``{"seeds", "finish_reasons", "images"}``), so each service is a schema in
``SCHEMAS`` plus, where the schema cannot say it, a cross-field rule in
``_RULES``. Errors use the same ``Malformed input request: #/path: reason``
wording as the Titan/Nova rules.

Fields, ranges and defaults follow the AWS pages: "Stability AI Image
Services" (userguide/stable-image-services.html, thirteen-service edition),
"Stable Image Ultra request and response", "Stable Image Core request and
response" and "Stability.ai Stable Diffusion 3.5 Large". Where those pages
disagree with other sources the AWS page wins; each such place says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from gateway.emulator.errors import EmulatorError, malformed
from gateway.emulator.models import (
    CREATIVE_UPSCALE_LIMITS,
    FAST_UPSCALE_LIMITS,
    STABILITY_ASPECT_SIZES,
    STABILITY_STYLE_PRESETS,
    STANDARD_LIMITS,
    StabilityImageLimits,
    StabilityService,
    StabilitySpec,
)
from gateway.emulator.schema import INTEGER, NUMBER, OBJECT, STRING, Field, check

S = StabilityService

MAX_PROMPT = 10_000
IMAGE_KEYS = ("image", "mask", "init_image", "style_image")
TEXT_TO_IMAGE, IMAGE_TO_IMAGE = "text-to-image", "image-to-image"
_FORMATS = ("PNG", "JPEG", "WEBP")


# ---------------------------------------------------------------- schemas

_PROMPT = Field(STRING, max_length=MAX_PROMPT)  # AWS: "Minimum 0 and Maximum 10000 characters"
_PROMPT_REQUIRED = Field(STRING, required=True, max_length=MAX_PROMPT)
_IMAGE = Field(STRING, min_length=1)
_IMAGE_REQUIRED = Field(STRING, required=True, min_length=1)
_UNIT = Field(NUMBER, minimum=0.0, maximum=1.0)
_SEED = Field(INTEGER, minimum=0, maximum=4_294_967_294)
_SEED_ULTRA_CORE = Field(INTEGER, minimum=0, maximum=4_294_967_295)
_FORMAT = Field(STRING, enum=("jpeg", "png", "webp"))
# Ultra and Core document "Supported formats: JPEG, PNG" (no WebP).
_FORMAT_ULTRA_CORE = Field(STRING, enum=("jpeg", "png"))
_ASPECT = Field(STRING, enum=tuple(STABILITY_ASPECT_SIZES))
_STYLE = Field(STRING, enum=STABILITY_STYLE_PRESETS)
_GROW_MASK = Field(INTEGER, minimum=0, maximum=20)
_DIRECTION = Field(INTEGER, minimum=0, maximum=2_000)


def _body(**props: Field) -> Field:
    return Field(OBJECT, properties=props)


_EDIT_COMMON: dict[str, Field] = {
    "image": _IMAGE_REQUIRED,
    "negative_prompt": _PROMPT,
    "seed": _SEED,
    "output_format": _FORMAT,
    "style_preset": _STYLE,
}
# Control Sketch and Control Structure take the same fields.
_CONTROL = _body(**_EDIT_COMMON, prompt=_PROMPT_REQUIRED, control_strength=_UNIT)

SCHEMAS: dict[StabilityService, Field] = {
    # Ultra: AWS lists `mode` with the single value text-to-image and an
    # image-to-image section without a mode; both values are accepted here.
    S.ULTRA: _body(
        prompt=_PROMPT_REQUIRED, negative_prompt=_PROMPT, aspect_ratio=_ASPECT,
        mode=Field(STRING, enum=(TEXT_TO_IMAGE, IMAGE_TO_IMAGE)), seed=_SEED_ULTRA_CORE,
        output_format=_FORMAT_ULTRA_CORE, image=_IMAGE, strength=_UNIT,
    ),
    # Core: the AWS page also lists `mode` (enum: text-to-image only). Its
    # "text_prompts (Required)" line is a leftover: its example sends `prompt`.
    S.CORE: _body(
        prompt=_PROMPT_REQUIRED, negative_prompt=_PROMPT, aspect_ratio=_ASPECT,
        mode=Field(STRING, enum=(TEXT_TO_IMAGE,)), seed=_SEED_ULTRA_CORE,
        output_format=_FORMAT_ULTRA_CORE,
    ),
    S.SD35_LARGE: _body(
        prompt=_PROMPT_REQUIRED, negative_prompt=_PROMPT, aspect_ratio=_ASPECT,
        mode=Field(STRING, enum=(TEXT_TO_IMAGE, IMAGE_TO_IMAGE)), seed=_SEED,
        output_format=_FORMAT, image=_IMAGE, strength=_UNIT,
    ),
    # Remove Background: AWS lists jpeg too (Stability's own API only png and
    # webp); a JPEG cannot carry the transparency, see stability_render.encode.
    S.REMOVE_BACKGROUND: _body(image=_IMAGE_REQUIRED, output_format=_FORMAT),
    S.ERASE_OBJECT: _body(
        image=_IMAGE_REQUIRED, mask=_IMAGE, seed=_SEED, output_format=_FORMAT,
        grow_mask=_GROW_MASK,
    ),
    S.INPAINT: _body(**_EDIT_COMMON, prompt=_PROMPT_REQUIRED, mask=_IMAGE, grow_mask=_GROW_MASK),
    S.SEARCH_REPLACE: _body(
        **_EDIT_COMMON, prompt=_PROMPT_REQUIRED, grow_mask=_GROW_MASK,
        search_prompt=Field(STRING, required=True, max_length=MAX_PROMPT),
    ),
    S.SEARCH_RECOLOR: _body(
        **_EDIT_COMMON, prompt=_PROMPT_REQUIRED, grow_mask=_GROW_MASK,
        select_prompt=Field(STRING, required=True, max_length=MAX_PROMPT),
    ),
    S.CONTROL_SKETCH: _CONTROL,
    S.CONTROL_STRUCTURE: _CONTROL,
    S.STYLE_GUIDE: _body(
        **_EDIT_COMMON, prompt=_PROMPT_REQUIRED, aspect_ratio=_ASPECT, fidelity=_UNIT
    ),
    # Style Transfer: no style_preset; the AWS page gives prompt no maximum,
    # the 10,000 of every other prompt is applied.
    S.STYLE_TRANSFER: _body(
        init_image=_IMAGE_REQUIRED, style_image=_IMAGE_REQUIRED, prompt=_PROMPT,
        negative_prompt=_PROMPT, seed=_SEED, output_format=_FORMAT,
        composition_fidelity=_UNIT, style_strength=_UNIT,
        change_strength=Field(NUMBER, minimum=0.1, maximum=1.0),
    ),
    # Outpaint: AWS lists no negative_prompt.
    S.OUTPAINT: _body(
        image=_IMAGE_REQUIRED, prompt=_PROMPT, style_preset=_STYLE, seed=_SEED,
        output_format=_FORMAT, creativity=Field(NUMBER, minimum=0.1, maximum=1.0),
        left=_DIRECTION, right=_DIRECTION, up=_DIRECTION, down=_DIRECTION,
    ),
    # Fast Upscale: AWS marks output_format "required" yet gives it a default
    # and omits it in its own example, so it is optional here.
    S.FAST_UPSCALE: _body(image=_IMAGE_REQUIRED, output_format=_FORMAT),
    # Conservative Upscale creativity: AWS says 0.1-0.5 (default 0.35);
    # Stability's own API reference says 0.2-0.5. The AWS range is applied.
    S.CONSERVATIVE_UPSCALE: _body(
        image=_IMAGE_REQUIRED, prompt=_PROMPT_REQUIRED, negative_prompt=_PROMPT, seed=_SEED,
        output_format=_FORMAT, creativity=Field(NUMBER, minimum=0.1, maximum=0.5),
    ),
    S.CREATIVE_UPSCALE: _body(
        image=_IMAGE_REQUIRED, prompt=_PROMPT_REQUIRED, negative_prompt=_PROMPT, seed=_SEED,
        output_format=_FORMAT, style_preset=_STYLE,
        creativity=Field(NUMBER, minimum=0.1, maximum=0.5),
    ),
}  # fmt: skip

# Documented defaults of optional numbers, per service.
_CREATIVITY = {S.OUTPAINT: 0.5, S.CONSERVATIVE_UPSCALE: 0.35, S.CREATIVE_UPSCALE: 0.3}
_IMAGE_LIMITS = {S.FAST_UPSCALE: FAST_UPSCALE_LIMITS, S.CREATIVE_UPSCALE: CREATIVE_UPSCALE_LIMITS}


# ---------------------------------------------------------- cross-field rules


def _mode_error(key: str, mode: str, *, missing: bool) -> EmulatorError:
    if missing:
        return malformed("#", f"required key [{key}] not found when mode is {mode}")
    return malformed("#", f"extraneous key [{key}] is not permitted when mode is {mode}")


def _mode(body: dict[str, Any]) -> str:
    return str(body.get("mode", IMAGE_TO_IMAGE if "image" in body else TEXT_TO_IMAGE))


def sd35_mode(body: dict[str, Any]) -> None:
    """SD3.5: image-to-image needs image and strength and takes no aspect_ratio.

    Without `mode`, a body carrying `image` is image-to-image: AWS's own
    image-to-image example sends prompt, image and strength and no mode.
    """
    mode = _mode(body)
    if mode == IMAGE_TO_IMAGE:
        for key in ("image", "strength"):
            if key not in body:
                raise _mode_error(key, mode, missing=True)
        if "aspect_ratio" in body:
            raise _mode_error("aspect_ratio", mode, missing=False)
        return
    for key in ("image", "strength"):
        if key in body:
            raise _mode_error(key, mode, missing=False)


def ultra_mode(body: dict[str, Any]) -> None:
    """Ultra: image-to-image means "an image was sent"; an explicit mode must agree.

    aspect_ratio is accepted (and ignored) with an image: AWS lists it among
    Ultra's image-to-image fields. strength is optional (default 0.35).
    """
    mode = _mode(body)
    if mode == IMAGE_TO_IMAGE and "image" not in body:
        raise _mode_error("image", mode, missing=True)
    if mode == TEXT_TO_IMAGE:
        for key in ("image", "strength"):
            if key in body:
                raise _mode_error(key, mode, missing=False)


def outpaint_directions(body: dict[str, Any]) -> None:
    if not any(body.get(side, 0) > 0 for side in ("left", "right", "up", "down")):
        raise malformed("#", "at least one of [left, right, up, down] must be greater than 0")


_RULES: dict[StabilityService, Callable[[dict[str, Any]], None]] = {
    S.ULTRA: ultra_mode,
    S.SD35_LARGE: sd35_mode,
    S.OUTPAINT: outpaint_directions,
}


# ------------------------------------------------------------ the request


@dataclass(frozen=True, eq=False)
class StabilityRequest:
    """A Stability request that passed every rule, with defaults applied and images decoded."""

    model: StabilitySpec
    seed: int  # the seed answered in `seeds`: the request's, or derived when 0/omitted
    prompt: str = ""
    negative_prompt: str = ""
    search_prompt: str = ""  # search_prompt (Search and Replace) or select_prompt (Recolor)
    style_preset: str | None = None
    output_format: str = "png"
    aspect_ratio: str = "1:1"
    image: Image.Image | None = None  # `image`, or Style Transfer's `init_image`
    style_image: Image.Image | None = None
    mask: Image.Image | None = None  # L, repaint strength: 255 = white in a Stability mask
    strength: float = 0.35  # image-to-image: 0 keeps the input, 1 ignores it
    grow_mask: int = 5
    control_strength: float = 0.7
    fidelity: float = 0.5
    composition_fidelity: float = 0.9
    style_strength: float = 1.0
    change_strength: float = 0.9
    creativity: float = 0.5
    outpaint: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, up, right, down

    @property
    def service(self) -> StabilityService:
        return self.model.service

    @property
    def texts(self) -> tuple[str, ...]:
        """Every prompt-like text, for the content filters."""
        return (self.prompt, self.negative_prompt, self.search_prompt)

    @property
    def has_input_image(self) -> bool:
        return self.image is not None


def validate_stability(model: StabilitySpec, body: dict[str, Any]) -> StabilityRequest:
    """Check `body` against `model`'s rules; raise EmulatorError on the first violation."""
    service = model.service
    check(body, SCHEMAS[service])
    rule = _RULES.get(service)
    if rule is not None:
        rule(body)
    image = _decode_main_image(service, body)
    return StabilityRequest(
        model=model,
        seed=int(body.get("seed", 0)) or derived_seed(model, body),
        prompt=str(body.get("prompt", "")),
        negative_prompt=str(body.get("negative_prompt", "")),
        search_prompt=str(body.get("search_prompt", body.get("select_prompt", ""))),
        style_preset=body.get("style_preset"),
        output_format=str(body.get("output_format", "png")),
        aspect_ratio=str(body.get("aspect_ratio", "1:1")),
        image=image,
        style_image=_decode_optional(body, "style_image", STANDARD_LIMITS),
        mask=_repaint_mask(service, body, image),
        strength=float(body.get("strength", 0.35)),
        grow_mask=int(body.get("grow_mask", 5)),
        control_strength=float(body.get("control_strength", 0.7)),
        fidelity=float(body.get("fidelity", 0.5)),
        composition_fidelity=float(body.get("composition_fidelity", 0.9)),
        style_strength=float(body.get("style_strength", 1.0)),
        change_strength=float(body.get("change_strength", 0.9)),
        creativity=float(body.get("creativity", _CREATIVITY.get(service, 0.5))),
        outpaint=(
            int(body.get("left", 0)),
            int(body.get("up", 0)),
            int(body.get("right", 0)),
            int(body.get("down", 0)),
        ),
    )


def derived_seed(model: StabilitySpec, body: dict[str, Any]) -> int:
    """Bedrock picks a random seed for 0/omitted; the emulator derives one from the body.

    It is reported in `seeds` like a random one, but the same body (seed 0 or
    omitted alike) always gets the same seed, and so the same image; sending
    that seed back reproduces the image.
    """
    rest = {key: value for key, value in body.items() if key != "seed"}
    canonical = json.dumps([model.model_id, rest], sort_keys=True).encode()
    digest = int.from_bytes(hashlib.sha256(canonical).digest()[:8], "big")
    return 1 + digest % model.max_seed


# ------------------------------------------------------------------ images


def _decode_main_image(service: StabilityService, body: dict[str, Any]) -> Image.Image | None:
    limits = _IMAGE_LIMITS.get(service, STANDARD_LIMITS)
    key = "init_image" if service is S.STYLE_TRANSFER else "image"
    return _decode_optional(body, key, limits)


def _decode_optional(
    body: dict[str, Any], key: str, limits: StabilityImageLimits
) -> Image.Image | None:
    if key not in body:
        return None
    return decode_image(body[key], f"#/{key}", limits)


def decode_image(data: str, path: str, limits: StabilityImageLimits | None) -> Image.Image:
    """Decode one base64 JPEG/PNG/WebP field and enforce `limits` (None: decodable only)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise malformed(path, "image data is not valid base64") from exc
    try:
        image = Image.open(io.BytesIO(raw), formats=_FORMATS)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise malformed(
            path, "unable to decode image, it must be a base64-encoded JPEG, PNG or WebP image"
        ) from exc
    problem = None if limits is None else limits.problem(*image.size)
    if problem is not None:
        raise malformed(
            path, f"image dimensions {image.width}x{image.height} are not supported, {problem}"
        )
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise malformed(path, f"unable to decode image data ({exc})") from exc
    return image


def _repaint_mask(
    service: StabilityService, body: dict[str, Any], image: Image.Image | None
) -> Image.Image | None:
    """Inpaint/Erase: where to repaint, as L (255 = full strength).

    Stability masks are the reverse of Titan/Nova's: black keeps, white
    repaints, grey repaints partly. A mask of another size is resized. Without
    a mask the image's alpha decides (transparent pixels are repainted); an
    explicit mask wins over alpha.
    """
    if service not in (S.INPAINT, S.ERASE_OBJECT) or image is None:
        return None
    if "mask" in body:
        mask = decode_image(body["mask"], "#/mask", None).convert("L")
        if mask.size != image.size:
            mask = mask.resize(image.size, Image.Resampling.BILINEAR)
        return mask
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return ImageOps.invert(image.convert("RGBA").getchannel("A"))
    return Image.new("L", image.size, 0)
