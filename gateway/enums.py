"""The small vocabularies shared by the domain, the model registry and the backends."""

from enum import StrEnum


class TaskType(StrEnum):
    """Titan task types; the values are Bedrock's `taskType` strings."""

    TEXT_IMAGE = "TEXT_IMAGE"
    INPAINTING = "INPAINTING"
    OUTPAINTING = "OUTPAINTING"
    IMAGE_VARIATION = "IMAGE_VARIATION"
    BACKGROUND_REMOVAL = "BACKGROUND_REMOVAL"
    COLOR_GUIDED_GENERATION = "COLOR_GUIDED_GENERATION"


class Quality(StrEnum):
    """Generation quality; the values are Bedrock's strings."""

    STANDARD = "standard"
    PREMIUM = "premium"


class ControlMode(StrEnum):
    """How a condition image guides text-to-image."""

    CANNY_EDGE = "CANNY_EDGE"
    SEGMENTATION = "SEGMENTATION"


class OutpaintingMode(StrEnum):
    """How strictly outpainting keeps the masked region."""

    DEFAULT = "DEFAULT"
    PRECISE = "PRECISE"
