"""Typed, frozen value objects for one image job.

The protobuf request is decoded and validated into these once (see
`gateway.validation`); everything after that (backends, fan-out, later the
policy engine) works on these types, never on raw protobuf messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.enums import ControlMode, OutpaintingMode, OutputFormat, Quality, TaskType
from gateway.registry import ModelSpec

__all__ = [
    "BackgroundRemoval",
    "ColorGuidedGeneration",
    "ConservativeUpscale",
    "ControlMode",
    "CreativeUpscale",
    "EraseObject",
    "ExpandCanvas",
    "FastUpscale",
    "ImageConfig",
    "ImageJob",
    "ImageToImage",
    "ImageVariation",
    "Inpainting",
    "InputImage",
    "Outpainting",
    "OutpaintingMode",
    "OutputFormat",
    "Quality",
    "SearchAndRecolor",
    "SearchAndReplace",
    "StyleGuide",
    "StyleTransfer",
    "Task",
    "TaskType",
    "TextToImage",
    "VirtualTryOn",
]


@dataclass(frozen=True)
class InputImage:
    """An input image that has been decoded and checked once."""

    data: bytes = field(repr=False)  # megabytes: keep it out of logs
    format: str  # "PNG", "JPEG" or "WEBP"
    width: int
    height: int


@dataclass(frozen=True)
class TextToImage:
    text: str
    negative_text: str | None = None
    condition_image: InputImage | None = None
    control_mode: ControlMode | None = None
    control_strength: float | None = None
    style: str | None = None


@dataclass(frozen=True)
class Inpainting:
    """`mask_image` uses the API's convention: black is the region to replace."""

    image: InputImage
    mask_prompt: str | None = None
    mask_image: InputImage | None = None
    text: str | None = None
    negative_text: str | None = None
    return_mask: bool = False
    grow_mask: int | None = None
    style: str | None = None


@dataclass(frozen=True)
class Outpainting:
    image: InputImage
    text: str
    mask_prompt: str | None = None
    mask_image: InputImage | None = None
    negative_text: str | None = None
    mode: OutpaintingMode = OutpaintingMode.DEFAULT
    return_mask: bool = False


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


@dataclass(frozen=True)
class ImageToImage:
    """`strength`: 0 keeps the input, 1 ignores it (Stability's convention)."""

    image: InputImage
    text: str
    negative_text: str | None = None
    strength: float | None = None


@dataclass(frozen=True)
class FastUpscale:
    image: InputImage


@dataclass(frozen=True)
class ConservativeUpscale:
    image: InputImage
    text: str
    negative_text: str | None = None
    creativity: float | None = None


@dataclass(frozen=True)
class CreativeUpscale:
    image: InputImage
    text: str
    negative_text: str | None = None
    creativity: float | None = None
    style: str | None = None


@dataclass(frozen=True)
class SearchAndReplace:
    image: InputImage
    search_prompt: str
    text: str
    negative_text: str | None = None
    grow_mask: int | None = None
    style: str | None = None


@dataclass(frozen=True)
class SearchAndRecolor:
    image: InputImage
    select_prompt: str
    text: str
    negative_text: str | None = None
    grow_mask: int | None = None
    style: str | None = None


@dataclass(frozen=True)
class EraseObject:
    """`mask_image` uses the API's convention: black is the region to erase."""

    image: InputImage
    mask_image: InputImage | None = None
    grow_mask: int | None = None


@dataclass(frozen=True)
class ExpandCanvas:
    image: InputImage
    left: int = 0
    right: int = 0
    up: int = 0
    down: int = 0
    text: str | None = None
    creativity: float | None = None
    style: str | None = None


@dataclass(frozen=True)
class StyleGuide:
    image: InputImage
    text: str
    negative_text: str | None = None
    fidelity: float | None = None
    style: str | None = None


@dataclass(frozen=True)
class StyleTransfer:
    image: InputImage
    style_image: InputImage
    text: str | None = None
    negative_text: str | None = None
    style_strength: float | None = None
    composition_fidelity: float | None = None
    change_strength: float | None = None


@dataclass(frozen=True)
class VirtualTryOn:
    """Nova Canvas VIRTUAL_TRY_ON; `mask_type` is GARMENT, IMAGE or PROMPT.

    The string fields hold Nova's own values (validated against its lists)."""

    source_image: InputImage
    reference_image: InputImage
    mask_type: str = "GARMENT"
    garment_class: str | None = None
    mask_image: InputImage | None = None
    mask_prompt: str | None = None
    mask_shape: str | None = None
    merge_style: str | None = None
    preserve_body_pose: str | None = None
    preserve_hands: str | None = None
    preserve_face: str | None = None
    long_sleeve_style: str | None = None
    tucking_style: str | None = None
    outer_layer_style: str | None = None
    return_mask: bool = False


Task = (
    TextToImage
    | Inpainting
    | Outpainting
    | ImageVariation
    | BackgroundRemoval
    | ColorGuidedGeneration
    | ImageToImage
    | FastUpscale
    | ConservativeUpscale
    | CreativeUpscale
    | SearchAndReplace
    | SearchAndRecolor
    | EraseObject
    | ExpandCanvas
    | StyleGuide
    | StyleTransfer
    | VirtualTryOn
)

TASK_TYPES: dict[type, TaskType] = {
    TextToImage: TaskType.TEXT_IMAGE,
    Inpainting: TaskType.INPAINTING,
    Outpainting: TaskType.OUTPAINTING,
    ImageVariation: TaskType.IMAGE_VARIATION,
    BackgroundRemoval: TaskType.BACKGROUND_REMOVAL,
    ColorGuidedGeneration: TaskType.COLOR_GUIDED_GENERATION,
    ImageToImage: TaskType.IMAGE_TO_IMAGE,
    FastUpscale: TaskType.FAST_UPSCALE,
    ConservativeUpscale: TaskType.CONSERVATIVE_UPSCALE,
    CreativeUpscale: TaskType.CREATIVE_UPSCALE,
    SearchAndReplace: TaskType.SEARCH_AND_REPLACE,
    SearchAndRecolor: TaskType.SEARCH_AND_RECOLOR,
    EraseObject: TaskType.ERASE_OBJECT,
    ExpandCanvas: TaskType.EXPAND_CANVAS,
    StyleGuide: TaskType.STYLE_GUIDE,
    StyleTransfer: TaskType.STYLE_TRANSFER,
    VirtualTryOn: TaskType.VIRTUAL_TRY_ON,
}
# Conditioning on a sketch or a structure is its own Stability service.
_CONTROL_TASKS = {
    ControlMode.SKETCH: TaskType.CONTROL_SKETCH,
    ControlMode.STRUCTURE: TaskType.CONTROL_STRUCTURE,
}


def task_type_of(task: Task) -> TaskType:
    """The task type a domain task runs as (text-to-image with SKETCH or
    STRUCTURE conditioning is a Control task)."""
    if isinstance(task, TextToImage) and task.control_mode in _CONTROL_TASKS:
        return _CONTROL_TASKS[task.control_mode]
    return TASK_TYPES[type(task)]


@dataclass(frozen=True)
class ImageConfig:
    """Output settings after defaults are applied.

    `width`/`height` are the output size: for editing tasks, the input
    image's size (Titan keeps it); `send_size` says whether they go into the
    Bedrock body (Nova forbids them for inpainting/outpainting). For models
    that take an aspect ratio (`aspect_ratio` set), width/height are the
    registry's nominal size for that ratio; the real size is read from the
    image. `cfg_scale` is None for models without one (Stability).
    """

    count: int
    width: int
    height: int
    cfg_scale: float | None
    seed: int
    quality: Quality
    send_size: bool = True
    output_format: OutputFormat = OutputFormat.PNG
    aspect_ratio: str | None = None


@dataclass(frozen=True)
class ImageJob:
    """A validated request: one task, its output settings and its model."""

    task: Task
    config: ImageConfig
    model: ModelSpec
    client_request_id: str = ""

    @property
    def task_type(self) -> TaskType:
        return task_type_of(self.task)

    def seed_for(self, index: int) -> int:
        """Image `index` is generated with seed + index (see the proto)."""
        return self.config.seed + index
