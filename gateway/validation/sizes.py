"""Output sizes that follow the input image, and the aspect-ratio table.

Edits keep the input's size; the other input-based tasks derive theirs from
it. These are *nominal* sizes (what Accepted reports and prices are computed
from before the image exists); the real size is read from the image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gateway.domain import ExpandCanvas, InputImage, Task, TaskType
from gateway.registry import DEFAULT_SIZE, ModelLimits

Size = tuple[int, int]
UPSCALE_PIXELS = 4_194_304  # Conservative / Creative Upscale: "about 4 megapixels"
FAST_UPSCALE_FACTOR = 4

SAME_SIZE_TASKS = frozenset(
    {
        TaskType.INPAINTING,
        TaskType.OUTPAINTING,
        TaskType.ERASE_OBJECT,
        TaskType.SEARCH_AND_REPLACE,
        TaskType.SEARCH_AND_RECOLOR,
        TaskType.BACKGROUND_REMOVAL,
        TaskType.CONTROL_SKETCH,
        TaskType.CONTROL_STRUCTURE,
        TaskType.STYLE_TRANSFER,
        TaskType.VIRTUAL_TRY_ON,
    }
)
# How the other input-based tasks derive their size, for messages.
_DERIVED: Mapping[TaskType, str] = {
    TaskType.IMAGE_TO_IMAGE: "the model's aspect ratio closest to the input's",
    TaskType.EXPAND_CANVAS: "the input's size plus the added sides",
    TaskType.FAST_UPSCALE: f"{FAST_UPSCALE_FACTOR}x each side",
    TaskType.CONSERVATIVE_UPSCALE: "about 4 megapixels at the input's aspect ratio",
    TaskType.CREATIVE_UPSCALE: "about 4 megapixels at the input's aspect ratio",
}
FOLLOWS_INPUT = SAME_SIZE_TASKS | frozenset(_DERIVED)


def how_it_follows(task_type: TaskType) -> str:
    """How the output size follows the input, e.g. "4x each side"."""
    return _DERIVED.get(task_type, "it has the input image's size")


def nominal_size(
    limits: ModelLimits, task_type: TaskType, task: Task | None, source: InputImage | None
) -> Size:
    """The output size of an input-based task (DEFAULT_SIZE without an input:
    only reached when a violation is already recorded)."""
    if source is None:
        return DEFAULT_SIZE
    width, height = source.width, source.height
    match task_type:
        case TaskType.IMAGE_TO_IMAGE:
            ratio = closest_ratio(limits.aspect_ratios, (width, height))
            return (width, height) if ratio is None else limits.aspect_ratios[ratio]
        case TaskType.EXPAND_CANVAS if isinstance(task, ExpandCanvas):
            return width + task.left + task.right, height + task.up + task.down
        case TaskType.FAST_UPSCALE:
            return width * FAST_UPSCALE_FACTOR, height * FAST_UPSCALE_FACTOR
        case TaskType.CONSERVATIVE_UPSCALE | TaskType.CREATIVE_UPSCALE:
            return about_pixels(UPSCALE_PIXELS, width, height)
        case _:
            return width, height


def about_pixels(pixels: int, width: int, height: int) -> Size:
    """About `pixels` pixels at the aspect ratio width:height."""
    new_width = max(1, round(math.sqrt(pixels * width / height)))
    return new_width, max(1, round(pixels / new_width))


def closest_ratio(table: Mapping[str, Size], size: Size) -> str | None:
    """The table's ratio nearest to size's (by log ratio: 2:1 and 1:2 are as
    far from 1:1); the first in table order on a tie; None for an empty table."""
    target = math.log(size[0] / size[1])
    best = min(table, key=lambda r: abs(math.log(table[r][0] / table[r][1]) - target), default=None)
    return best


def ratio_of(table: Mapping[str, Size], size: Size) -> str | None:
    """The ratio whose table size is exactly `size`, or None."""
    return next((ratio for ratio, entry in table.items() if entry == size), None)


def fmt(size: Size) -> str:
    return f"{size[0]}x{size[1]}"
