"""What the registry knows about one model: typed, frozen, read from models.yaml.

`ModelLimits` keeps the field names the validation code has always read
(`max_text`, `sizes`, `min_input_side`, ...), now per model instead of per
family, plus what the Stability models added (aspect ratios, formats,
styles, pixel-count and aspect-ratio rules for inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from gateway.enums import ControlMode, Dialect, OutputFormat, Quality, TaskType

Size = tuple[int, int]

# Titan's fixed output sizes (width, height); anything else is a
# ValidationException at Bedrock (titan-api.md §2).
TITAN_SIZES: frozenset[Size] = frozenset(
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

MIN_CFG_SCALE = 1.1
MAX_CFG_SCALE = 10.0
MAX_IMAGES = 5  # per request: N single-image calls, whatever the model
DEFAULT_SIZE: Size = (1024, 1024)
NOVA_MIN_SIDE, NOVA_MAX_SIDE, NOVA_MAX_PIXELS = 320, 4096, 4_194_304
MAX_BODY_BYTES = 25_000_000  # InvokeModel's body limit (botocore's shape)


class SizeRule(StrEnum):
    """How a model's output size is chosen."""

    TITAN = "titan"  # one of TITAN_SIZES
    NOVA = "nova"  # free within Nova's resolution rules
    ASPECT_RATIO = "aspect_ratio"  # an aspect ratio from the model's table
    INPUT = "input"  # follows the input image; the caller sets no size


@dataclass(frozen=True)
class InputRules:
    """What an input image must be for this model."""

    min_side: int = 1
    max_side: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    max_aspect: float | None = None  # longer side / shorter side
    formats: frozenset[str] = frozenset({"PNG", "JPEG"})
    max_bytes: int = 5 * 1024 * 1024
    opaque_only: bool = False  # Nova: no transparent or translucent pixels
    nova_rules: bool = False  # Nova: inputs follow the output resolution rules, 8-bit


@dataclass(frozen=True)
class ModelLimits:
    """One model's request limits."""

    max_text: int
    size_rule: SizeRule
    seed_max: int
    seed_default: int | None  # None: the gateway picks one and reports it
    cfg_scale_default: float | None  # None: the model takes no cfg scale
    qualities: frozenset[Quality]
    output_formats: tuple[OutputFormat, ...]
    input: InputRules
    control_modes: frozenset[ControlMode] = frozenset()
    styles: tuple[str, ...] = ()
    aspect_ratios: Mapping[str, Size] = field(default_factory=lambda: MappingProxyType({}))
    edit_size_allowed: bool = False

    # The names the validation code has always read.
    @property
    def sizes(self) -> frozenset[Size] | None:
        return TITAN_SIZES if self.size_rule is SizeRule.TITAN else None

    @property
    def min_input_side(self) -> int:
        return self.input.min_side

    @property
    def max_input_side(self) -> int | None:
        return self.input.max_side

    @property
    def opaque_inputs_only(self) -> bool:
        return self.input.opaque_only

    @property
    def nova_input_rules(self) -> bool:
        return self.input.nova_rules

    @property
    def default_seed(self) -> int | None:
        return self.seed_default

    @property
    def default_cfg_scale(self) -> float | None:
        return self.cfg_scale_default


@dataclass(frozen=True)
class PriceTier:
    """Images with at most `max_pixels` pixels cost these amounts each (micro-USD)."""

    max_pixels: int
    standard_micros: int
    premium_micros: int


@dataclass(frozen=True)
class Price:
    """A model's price per image: tiers by size and quality (flat = one tier)."""

    tiers: tuple[PriceTier, ...]
    source: str = ""

    def micros(self, width: int, height: int, quality: Quality) -> int | None:
        tier = next((t for t in self.tiers if width * height <= t.max_pixels), None)
        if tier is None:
            return None
        return tier.premium_micros if quality is Quality.PREMIUM else tier.standard_micros


class LifecycleState(StrEnum):
    ACTIVE = "active"
    LEGACY = "legacy"
    EOL = "eol"


@dataclass(frozen=True)
class Lifecycle:
    """Where the model is in Bedrock's lifecycle (dates from AWS's notices)."""

    legacy: date | None = None
    eol: date | None = None
    replacement: str | None = None
    extended_access: bool = False  # the account keeps access past EOL

    def state(self, today: date) -> LifecycleState:
        if self.eol is not None and today >= self.eol:
            return LifecycleState.EOL
        if self.legacy is not None and today >= self.legacy:
            return LifecycleState.LEGACY
        return LifecycleState.ACTIVE

    def retired(self, today: date) -> bool:
        """Past EOL and this account has no extended access: Bedrock will refuse it."""
        return self.state(today) is LifecycleState.EOL and not self.extended_access


@dataclass(frozen=True)
class ModelSpec:
    """One runnable model id: how to call it, what it can do, its limits and price."""

    model_id: str
    dialect: Dialect
    tasks: frozenset[TaskType]
    limits: ModelLimits
    price: Price
    invoke_id: str = ""  # the id sent to Bedrock; empty: model_id
    lifecycle: Lifecycle = Lifecycle()

    @property
    def invoke_model_id(self) -> str:
        return self.invoke_id or self.model_id

    def can(self, task: TaskType) -> bool:
        return task in self.tasks
