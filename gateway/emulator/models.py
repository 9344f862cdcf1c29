"""The models the emulator serves and the facts that differ between families.

Kept apart from the validation code so each rule reads as "the family's limit",
and so the tables here can be checked line by line against titan-api.md.
"""

from __future__ import annotations

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

PARAMS_FIELD: dict[str, str] = {
    TEXT_IMAGE: "textToImageParams",
    INPAINTING: "inPaintingParams",
    OUTPAINTING: "outPaintingParams",
    IMAGE_VARIATION: "imageVariationParams",
    COLOR_GUIDED_GENERATION: "colorGuidedGenerationParams",
    BACKGROUND_REMOVAL: "backgroundRemovalParams",
}

_ALL_TASKS = tuple(PARAMS_FIELD)
_V1_TASKS = (TEXT_IMAGE, INPAINTING, OUTPAINTING, IMAGE_VARIATION)

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
        "amazon.titan-image-generator-v2:0", Family.TITAN_V2, _ALL_TASKS, 512, 42, 8.0
    ),
    "amazon.nova-canvas-v1:0": ModelSpec(
        "amazon.nova-canvas-v1:0", Family.NOVA, _ALL_TASKS, 1024, 12, 6.5
    ),
}


def resolve_model(raw_model_id: str) -> ModelSpec | None:
    """The served model for a (still URL-encoded) path segment, or None.

    Accepts a base model id or a foundation-model ARN
    (``arn:aws:bedrock:<region>::foundation-model/<id>``), as Bedrock does.
    """
    model_id = unquote(raw_model_id)
    marker = ":foundation-model/"
    if model_id.startswith("arn:") and marker in model_id:
        model_id = model_id.split(marker, 1)[1]
    return MODELS.get(model_id)


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
