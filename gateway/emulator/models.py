"""The models the emulator serves and the facts that differ between families.

Kept apart from the validation code so each rule reads as "the family's limit",
and so the tables here can be checked line by line against titan-api.md (Titan,
Nova Canvas) and bedrock-image-models.md (the Stability models).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote


class Family(StrEnum):
    """A request-format family; models in one family validate identically."""

    TITAN_V1 = "titan-v1"
    TITAN_V2 = "titan-v2"
    NOVA = "nova-canvas"


TEXT_IMAGE = "TEXT_IMAGE"
INPAINTING = "INPAINTING"
OUTPAINTING = "OUTPAINTING"
IMAGE_VARIATION = "IMAGE_VARIATION"
COLOR_GUIDED_GENERATION = "COLOR_GUIDED_GENERATION"
BACKGROUND_REMOVAL = "BACKGROUND_REMOVAL"
VIRTUAL_TRY_ON = "VIRTUAL_TRY_ON"

PARAMS_FIELD: dict[str, str] = {
    TEXT_IMAGE: "textToImageParams",
    INPAINTING: "inPaintingParams",
    OUTPAINTING: "outPaintingParams",
    IMAGE_VARIATION: "imageVariationParams",
    COLOR_GUIDED_GENERATION: "colorGuidedGenerationParams",
    BACKGROUND_REMOVAL: "backgroundRemovalParams",
    VIRTUAL_TRY_ON: "virtualTryOnParams",
}

_V1_TASKS = (TEXT_IMAGE, INPAINTING, OUTPAINTING, IMAGE_VARIATION)
_V2_TASKS = (*_V1_TASKS, COLOR_GUIDED_GENERATION, BACKGROUND_REMOVAL)
_NOVA_TASKS = (*_V2_TASKS, VIRTUAL_TRY_ON)  # VIRTUAL_TRY_ON is Nova Canvas only

# VIRTUAL_TRY_ON enums (titan-api.md section 3; AWS's image-gen-vto and
# image-gen-req-resp-structure pages).
TRY_ON_MASK_TYPES = ("IMAGE", "GARMENT", "PROMPT")
TRY_ON_MASK_FIELDS: dict[str, str] = {
    "IMAGE": "imageBasedMask",
    "GARMENT": "garmentBasedMask",
    "PROMPT": "promptBasedMask",
}
TRY_ON_MASK_SHAPES = ("CONTOUR", "BOUNDING_BOX", "DEFAULT")
GARMENT_CLASSES = (
    "UPPER_BODY", "LOWER_BODY", "FULL_BODY", "FOOTWEAR",
    "LONG_SLEEVE_SHIRT", "SHORT_SLEEVE_SHIRT", "NO_SLEEVE_SHIRT", "OTHER_UPPER_BODY",
    "LONG_PANTS", "SHORT_PANTS", "OTHER_LOWER_BODY",
    "LONG_DRESS", "SHORT_DRESS", "FULL_BODY_OUTFIT", "OTHER_FULL_BODY",
    "SHOES", "BOOTS", "OTHER_FOOTWEAR",
)  # fmt: skip
LONG_SLEEVE_STYLES = ("SLEEVE_DOWN", "SLEEVE_UP")
TUCKING_STYLES = ("UNTUCKED", "TUCKED")
OUTER_LAYER_STYLES = ("CLOSED", "OPEN")
MASK_EXCLUSION_VALUES = ("ON", "OFF", "DEFAULT")
MERGE_STYLES = ("BALANCED", "SEAMLESS", "DETAILED")

# Titan's fixed (width, height) list from titan-api.md section 2.
TITAN_SIZES: tuple[tuple[int, int], ...] = (
    (1024, 1024), (768, 768), (512, 512),
    (768, 1152), (384, 576), (1152, 768), (576, 384),
    (768, 1280), (384, 640), (1280, 768), (640, 384),
    (896, 1152), (448, 576), (1152, 896), (576, 448),
    (768, 1408), (384, 704), (1408, 768), (704, 384),
    (640, 1408), (320, 704), (1408, 640), (704, 320),
    (1152, 640), (1173, 640),
)  # fmt: skip

NOVA_STYLES = (
    "3D_ANIMATED_FAMILY_FILM",
    "DESIGN_SKETCH",
    "FLAT_VECTOR_ILLUSTRATION",
    "GRAPHIC_NOVEL_ILLUSTRATION",
    "MAXIMALISM",
    "MIDCENTURY_RETRO",
    "PHOTOREALISM",
    "SOFT_DIGITAL_PAINTING",
)

MAX_SEED = 2_147_483_646
MAX_IMAGES = 5
MAX_INPUT_IMAGE_BYTES = 5 * 1024 * 1024
MAX_BODY_BYTES = 25_000_000
NOVA_MIN_SIDE, NOVA_MAX_SIDE, NOVA_MAX_PIXELS = 320, 4096, 4_194_304
TITAN_MAX_INPUT_SIDE = 1408


@dataclass(frozen=True)
class ModelSpec:
    """One served model id with its family's limits and defaults."""

    model_id: str
    family: Family
    tasks: tuple[str, ...]
    max_text: int
    default_seed: int
    default_cfg_scale: float
    # Titan docs say the default is 1408, but 1408x1408 is not an allowed
    # size, so the emulator uses the 1024x1024 the examples use.
    default_size: tuple[int, int] = (1024, 1024)

    @property
    def is_nova(self) -> bool:
        return self.family is Family.NOVA


MODELS: dict[str, ModelSpec] = {
    "amazon.titan-image-generator-v1": ModelSpec(
        "amazon.titan-image-generator-v1", Family.TITAN_V1, _V1_TASKS, 512, 42, 8.0
    ),
    "amazon.titan-image-generator-v2:0": ModelSpec(
        "amazon.titan-image-generator-v2:0", Family.TITAN_V2, _V2_TASKS, 512, 42, 8.0
    ),
    "amazon.nova-canvas-v1:0": ModelSpec(
        "amazon.nova-canvas-v1:0", Family.NOVA, _NOVA_TASKS, 1024, 12, 6.5
    ),
}


# ------------------------------------------------------------- Stability
# Facts from bedrock-image-models.md sections 1-3 and the AWS Stability pages.

STABILITY_STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture",
)  # fmt: skip

# Output size per aspect_ratio. AWS publishes the enum, not the pixel sizes;
# this is the common ~1 MP ladder, inside Ultra/Core's documented 640-1536 px.
STABILITY_ASPECT_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "21:9": (1536, 640),
    "9:21": (640, 1536),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
}


@dataclass(frozen=True)
class StabilityImageLimits:
    """Size rules for one input image field."""

    min_side: int = 64
    max_side: int | None = None
    min_pixels: int | None = None
    max_pixels: int = 9_437_184
    max_ratio: float | None = 2.5

    def problem(self, width: int, height: int) -> str | None:
        """Why (width, height) breaks these rules, or None."""
        if min(width, height) < self.min_side:
            return f"every side must be at least {self.min_side} pixels"
        if self.max_side is not None and max(width, height) > self.max_side:
            return f"every side must be at most {self.max_side} pixels"
        pixels = width * height
        if self.min_pixels is not None and not self.min_pixels <= pixels <= self.max_pixels:
            return f"total pixel count must be between {self.min_pixels} and {self.max_pixels}"
        if pixels > self.max_pixels:
            return f"total pixel count cannot exceed {self.max_pixels}"
        if self.max_ratio is not None and max(width, height) > self.max_ratio * min(width, height):
            return "aspect ratio must be between 1:2.5 and 2.5:1"
        return None


STANDARD_LIMITS = StabilityImageLimits()
# Creative Upscale: 64 px sides, 4,096-1,048,576 px, no ratio rule stated.
CREATIVE_UPSCALE_LIMITS = StabilityImageLimits(
    min_pixels=4_096, max_pixels=1_048_576, max_ratio=None
)
# Fast Upscale: each side 32-1,536 px, 1,024-1,048,576 px, no ratio rule stated.
FAST_UPSCALE_LIMITS = StabilityImageLimits(
    min_side=32, max_side=1_536, min_pixels=1_024, max_pixels=1_048_576, max_ratio=None
)


class StabilityService(StrEnum):
    """What a Stability model does; every model id maps to exactly one."""

    ULTRA = "stable-image-ultra"
    CORE = "stable-image-core"
    SD35_LARGE = "sd3.5-large"
    REMOVE_BACKGROUND = "remove-background"
    ERASE_OBJECT = "erase-object"
    INPAINT = "inpaint"
    SEARCH_REPLACE = "search-replace"
    SEARCH_RECOLOR = "search-recolor"
    CONTROL_SKETCH = "control-sketch"
    CONTROL_STRUCTURE = "control-structure"
    STYLE_GUIDE = "style-guide"
    STYLE_TRANSFER = "style-transfer"
    OUTPAINT = "outpaint"
    FAST_UPSCALE = "fast-upscale"
    CONSERVATIVE_UPSCALE = "conservative-upscale"
    CREATIVE_UPSCALE = "creative-upscale"


@dataclass(frozen=True)
class StabilitySpec:
    """One served Stability model id (the Stability request/response dialect)."""

    model_id: str
    service: StabilityService

    @property
    def max_seed(self) -> int:
        """Ultra and Core document 0..4294967295; SD3.5 and the Image Services one less."""
        if self.service in (StabilityService.ULTRA, StabilityService.CORE):
            return 4_294_967_295
        return 4_294_967_294


# Ids from bedrock-image-models.md section 1 (note the irregular names:
# stable-outpaint, stable-style-transfer and stable-*-upscale lack "image-").
_STABILITY_IDS: dict[str, StabilityService] = {
    "stability.stable-image-ultra-v1:1": StabilityService.ULTRA,
    "stability.stable-image-core-v1:1": StabilityService.CORE,
    "stability.sd3-5-large-v1:0": StabilityService.SD35_LARGE,
    "stability.stable-image-remove-background-v1:0": StabilityService.REMOVE_BACKGROUND,
    "stability.stable-image-erase-object-v1:0": StabilityService.ERASE_OBJECT,
    "stability.stable-image-inpaint-v1:0": StabilityService.INPAINT,
    "stability.stable-image-search-replace-v1:0": StabilityService.SEARCH_REPLACE,
    "stability.stable-image-search-recolor-v1:0": StabilityService.SEARCH_RECOLOR,
    "stability.stable-image-control-sketch-v1:0": StabilityService.CONTROL_SKETCH,
    "stability.stable-image-control-structure-v1:0": StabilityService.CONTROL_STRUCTURE,
    "stability.stable-image-style-guide-v1:0": StabilityService.STYLE_GUIDE,
    "stability.stable-style-transfer-v1:0": StabilityService.STYLE_TRANSFER,
    "stability.stable-outpaint-v1:0": StabilityService.OUTPAINT,
    "stability.stable-fast-upscale-v1:0": StabilityService.FAST_UPSCALE,
    "stability.stable-conservative-upscale-v1:0": StabilityService.CONSERVATIVE_UPSCALE,
    "stability.stable-creative-upscale-v1:0": StabilityService.CREATIVE_UPSCALE,
}

STABILITY_MODELS: dict[str, StabilitySpec] = {
    model_id: StabilitySpec(model_id, service) for model_id, service in _STABILITY_IDS.items()
}

ServedModel = ModelSpec | StabilitySpec

# Geography prefix of the cross-Region inference profiles. Only the Stability
# models have profiles here; Titan and Nova Canvas keep answering their bare
# ids only, as before.
PROFILE_PREFIX = "us."
_FOUNDATION_MODEL_MARKER = ":foundation-model/"
_INFERENCE_PROFILE_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:bedrock:[a-z0-9-]+:[0-9]{12}:inference-profile/(?P<id>.+)$"
)


def resolve_model(raw_model_id: str) -> ServedModel | None:
    """The served model for a (still URL-encoded) path segment, or None.

    Accepts, as Bedrock does: a base model id; a foundation-model ARN
    (``arn:aws:bedrock:<region>::foundation-model/<id>``); and, for models
    with a cross-Region profile, the profile id (``us.<id>``) or its ARN
    (``arn:aws:bedrock:<region>:<account>:inference-profile/us.<id>``).
    """
    model_id = unquote(raw_model_id)
    if model_id.startswith("arn:"):
        return _resolve_arn(model_id)
    if model_id.startswith(PROFILE_PREFIX):
        return STABILITY_MODELS.get(model_id.removeprefix(PROFILE_PREFIX))
    return MODELS.get(model_id) or STABILITY_MODELS.get(model_id)


def _resolve_arn(arn: str) -> ServedModel | None:
    if _FOUNDATION_MODEL_MARKER in arn:
        model_id = arn.split(_FOUNDATION_MODEL_MARKER, 1)[1]
        return MODELS.get(model_id) or STABILITY_MODELS.get(model_id)
    profile = _INFERENCE_PROFILE_ARN.match(arn)
    if profile is None or not profile["id"].startswith(PROFILE_PREFIX):
        return None
    return STABILITY_MODELS.get(profile["id"].removeprefix(PROFILE_PREFIX))


def nova_size_problem(width: int, height: int) -> str | None:
    """Why (width, height) breaks Nova Canvas's resolution rules, or None."""
    for side in (width, height):
        if not NOVA_MIN_SIDE <= side <= NOVA_MAX_SIDE:
            return f"each side must be between {NOVA_MIN_SIDE} and {NOVA_MAX_SIDE} pixels"
        if side % 16:
            return "each side must be divisible by 16"
    if max(width, height) > 4 * min(width, height):
        return "aspect ratio must be between 1:4 and 4:1"
    if width * height >= NOVA_MAX_PIXELS:
        return f"total pixel count must be less than {NOVA_MAX_PIXELS}"
    return None


def titan_size_problem(width: int, height: int) -> str | None:
    """Why (width, height) is not one of Titan's fixed sizes, or None."""
    if (width, height) in TITAN_SIZES:
        return None
    return f"size {width}x{height} is not supported, supported sizes are " + ", ".join(
        f"{w}x{h}" for w, h in TITAN_SIZES
    )
