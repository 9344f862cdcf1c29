"""The model registry: which Bedrock model ids the gateway may run, and each
model family's limits.

Model ids are configuration (models reach end of life: Titan v2 is Legacy
with EOL 2026-06-30), so the settings list ids and name a family; the limits
below belong to the family and come from `shared/titan-api.md`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from gateway.enums import TaskType


class ModelFamily(StrEnum):
    """A family of models that share one request format and one set of limits."""

    TITAN_V1 = "titan-v1"
    TITAN_V2 = "titan-v2"
    NOVA_CANVAS = "nova-canvas"


# Titan's fixed output sizes (width, height); anything else is a
# ValidationException at Bedrock.
TITAN_SIZES: frozenset[tuple[int, int]] = frozenset(
    {
        (1024, 1024), (768, 768), (512, 512),
        (768, 1152), (384, 576), (1152, 768), (576, 384),
        (768, 1280), (384, 640), (1280, 768), (640, 384),
        (896, 1152), (448, 576), (1152, 896), (576, 448),
        (768, 1408), (384, 704), (1408, 768), (704, 384),
        (640, 1408), (320, 704), (1408, 640), (704, 320),
        (1152, 640), (1173, 640),
    }
)  # fmt: skip

_ALL_TASKS = frozenset(TaskType)
_V1_TASKS = _ALL_TASKS - {TaskType.COLOR_GUIDED_GENERATION, TaskType.BACKGROUND_REMOVAL}


@dataclass(frozen=True)
class FamilyLimits:
    """Limits shared by every model of one family."""

    max_text: int
    tasks: frozenset[TaskType]
    conditioning: bool
    default_cfg_scale: float
    default_seed: int
    # None means "free sizes" checked by the Nova rules instead of a list.
    sizes: frozenset[tuple[int, int]] | None
    # Whether width/height may be sent for inpainting/outpainting.
    edit_size_allowed: bool
    # Input images: smallest and largest side in pixels.
    min_input_side: int
    max_input_side: int
    # Nova refuses inputs with transparent pixels.
    opaque_inputs_only: bool
    # Nova: input images follow the output resolution rules (sides divisible
    # by 16, ratio, pixel count) and have 8 bits per colour channel.
    nova_input_rules: bool = False


MIN_CFG_SCALE = 1.1
MAX_CFG_SCALE = 10.0
MAX_SEED = 2_147_483_646
MAX_IMAGES = 5
MAX_INPUT_BYTES = 5 * 1024 * 1024
DEFAULT_SIZE = (1024, 1024)
NOVA_MIN_SIDE, NOVA_MAX_SIDE, NOVA_MAX_PIXELS = 320, 4096, 4_194_304

FAMILY_LIMITS: dict[ModelFamily, FamilyLimits] = {
    ModelFamily.TITAN_V1: FamilyLimits(
        max_text=512, tasks=_V1_TASKS, conditioning=False, default_cfg_scale=8.0,
        default_seed=42, sizes=TITAN_SIZES, edit_size_allowed=True,
        min_input_side=64, max_input_side=1408, opaque_inputs_only=False,
    ),
    ModelFamily.TITAN_V2: FamilyLimits(
        max_text=512, tasks=_ALL_TASKS, conditioning=True, default_cfg_scale=8.0,
        default_seed=42, sizes=TITAN_SIZES, edit_size_allowed=True,
        min_input_side=64, max_input_side=1408, opaque_inputs_only=False,
    ),
    ModelFamily.NOVA_CANVAS: FamilyLimits(
        max_text=1024, tasks=_ALL_TASKS, conditioning=True, default_cfg_scale=6.5,
        default_seed=12, sizes=None, edit_size_allowed=False,
        min_input_side=NOVA_MIN_SIDE, max_input_side=NOVA_MAX_SIDE, opaque_inputs_only=True,
        nova_input_rules=True,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """One runnable model id and its family's limits."""

    model_id: str
    family: ModelFamily

    @property
    def limits(self) -> FamilyLimits:
        return FAMILY_LIMITS[self.family]


class ModelRegistry:
    """The model ids this gateway may run, with a default."""

    def __init__(self, models: Iterable[ModelSpec], default_model_id: str) -> None:
        self._models = {m.model_id: m for m in models}
        if default_model_id not in self._models:
            raise ValueError(f"default model {default_model_id!r} is not in the model list")
        self.default = self._models[default_model_id]

    def get(self, model_id: str) -> ModelSpec | None:
        """The model for `model_id`; the default for an empty id; None if unknown."""
        if not model_id:
            return self.default
        return self._models.get(model_id)

    @property
    def ids(self) -> list[str]:
        return sorted(self._models)


def nova_size_problem(width: int, height: int) -> str | None:
    """Why (width, height) breaks Nova Canvas's resolution rules, or None."""
    for side in (width, height):
        if not NOVA_MIN_SIDE <= side <= NOVA_MAX_SIDE:
            return f"each side must be {NOVA_MIN_SIDE}-{NOVA_MAX_SIDE} pixels"
        if side % 16:
            return "each side must be divisible by 16"
    if max(width, height) > 4 * min(width, height):
        return "aspect ratio must be between 1:4 and 4:1"
    if width * height >= NOVA_MAX_PIXELS:
        return f"width x height must be below {NOVA_MAX_PIXELS} pixels"
    return None
