"""Typed, frozen value objects for one image job.

The protobuf request is decoded and validated into these once (see
`gateway.validation`); everything after that (backends, fan-out, later the
policy engine) works on these types, never on raw protobuf messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.enums import ControlMode, OutpaintingMode, Quality, TaskType
from gateway.models import ModelSpec

__all__ = [
    "BackgroundRemoval",
    "ColorGuidedGeneration",
    "ControlMode",
    "ImageConfig",
    "ImageJob",
    "ImageVariation",
    "Inpainting",
    "InputImage",
    "Outpainting",
    "OutpaintingMode",
    "Quality",
    "Task",
    "TaskType",
    "TextToImage",
]


@dataclass(frozen=True)
class InputImage:
    """An input image that has been decoded and checked once."""

    data: bytes = field(repr=False)  # megabytes: keep it out of logs
    format: str  # "PNG" or "JPEG"
    width: int
    height: int


@dataclass(frozen=True)
class TextToImage:
    text: str
    negative_text: str | None = None
    condition_image: InputImage | None = None
    control_mode: ControlMode | None = None
    control_strength: float | None = None


@dataclass(frozen=True)
class Inpainting:
    image: InputImage
    mask_prompt: str | None = None
    mask_image: InputImage | None = None
    text: str | None = None
    negative_text: str | None = None


@dataclass(frozen=True)
class Outpainting:
    image: InputImage
    text: str
    mask_prompt: str | None = None
    mask_image: InputImage | None = None
    negative_text: str | None = None
    mode: OutpaintingMode = OutpaintingMode.DEFAULT


@dataclass(frozen=True)
class ImageVariation:
    images: tuple[InputImage, ...]
    text: str | None = None
    negative_text: str | None = None
    similarity_strength: float | None = None


@dataclass(frozen=True)
class BackgroundRemoval:
    image: InputImage


@dataclass(frozen=True)
class ColorGuidedGeneration:
    text: str
    colors: tuple[str, ...]
    negative_text: str | None = None
    reference_image: InputImage | None = None


Task = (
    TextToImage
    | Inpainting
    | Outpainting
    | ImageVariation
    | BackgroundRemoval
    | ColorGuidedGeneration
)

TASK_TYPES: dict[type, TaskType] = {
    TextToImage: TaskType.TEXT_IMAGE,
    Inpainting: TaskType.INPAINTING,
    Outpainting: TaskType.OUTPAINTING,
    ImageVariation: TaskType.IMAGE_VARIATION,
    BackgroundRemoval: TaskType.BACKGROUND_REMOVAL,
    ColorGuidedGeneration: TaskType.COLOR_GUIDED_GENERATION,
}


@dataclass(frozen=True)
class ImageConfig:
    """Output settings after defaults are applied.

    `width`/`height` are the output size: for editing tasks, the input
    image's size (Titan keeps it); `send_size` says whether they go into the
    Bedrock body (Nova forbids them for inpainting/outpainting).
    """

    count: int
    width: int
    height: int
    cfg_scale: float
    seed: int
    quality: Quality
    send_size: bool = True


@dataclass(frozen=True)
class ImageJob:
    """A validated request: one task, its output settings and its model."""

    task: Task
    config: ImageConfig
    model: ModelSpec
    client_request_id: str = ""

    @property
    def task_type(self) -> TaskType:
        return TASK_TYPES[type(self.task)]

    def seed_for(self, index: int) -> int:
        """Image `index` is generated with seed + index (see the proto)."""
        return self.config.seed + index
