"""The small vocabularies shared by the domain, the model registry and the dialects."""

from enum import StrEnum


class TaskType(StrEnum):
    """What the caller wants done. The first six values are also Titan's and
    Nova Canvas's `taskType` strings; VIRTUAL_TRY_ON is Nova's. The registry
    says which models can run each task."""

    TEXT_IMAGE = "TEXT_IMAGE"
    INPAINTING = "INPAINTING"
    OUTPAINTING = "OUTPAINTING"
    IMAGE_VARIATION = "IMAGE_VARIATION"
    BACKGROUND_REMOVAL = "BACKGROUND_REMOVAL"
    COLOR_GUIDED_GENERATION = "COLOR_GUIDED_GENERATION"
    IMAGE_TO_IMAGE = "IMAGE_TO_IMAGE"
    FAST_UPSCALE = "FAST_UPSCALE"
    CONSERVATIVE_UPSCALE = "CONSERVATIVE_UPSCALE"
    CREATIVE_UPSCALE = "CREATIVE_UPSCALE"
    SEARCH_AND_REPLACE = "SEARCH_AND_REPLACE"
    SEARCH_AND_RECOLOR = "SEARCH_AND_RECOLOR"
    ERASE_OBJECT = "ERASE_OBJECT"
    EXPAND_CANVAS = "EXPAND_CANVAS"
    STYLE_GUIDE = "STYLE_GUIDE"
    STYLE_TRANSFER = "STYLE_TRANSFER"
    CONTROL_SKETCH = "CONTROL_SKETCH"
    CONTROL_STRUCTURE = "CONTROL_STRUCTURE"
    VIRTUAL_TRY_ON = "VIRTUAL_TRY_ON"


class Quality(StrEnum):
    """Generation quality; the values are Bedrock's strings."""

    STANDARD = "standard"
    PREMIUM = "premium"


class ControlMode(StrEnum):
    """How a condition image guides text-to-image. SKETCH and STRUCTURE run on
    Stability's Control services (tasks CONTROL_SKETCH / CONTROL_STRUCTURE)."""

    CANNY_EDGE = "CANNY_EDGE"
    SEGMENTATION = "SEGMENTATION"
    SKETCH = "SKETCH"
    STRUCTURE = "STRUCTURE"


class OutpaintingMode(StrEnum):
    """How strictly outpainting keeps the masked region."""

    DEFAULT = "DEFAULT"
    PRECISE = "PRECISE"


class OutputFormat(StrEnum):
    """Encoding of the output images; the values are Stability's strings."""

    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"


class Dialect(StrEnum):
    """A model's InvokeModel body format (one module each in `gateway.dialects`)."""

    TITAN = "titan"
    NOVA_CANVAS = "nova-canvas"
    STABILITY = "stability"
