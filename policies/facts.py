"""The facts a decision is made from: tenant, request, usage so far, prompt texts.

The gateway builds these from a validated request; the engine never sees
protobuf. Every field here is visible to rule conditions (see
`policies.conditions` for the CEL names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

TASKS = (
    "TEXT_IMAGE",
    "INPAINTING",
    "OUTPAINTING",
    "IMAGE_VARIATION",
    "BACKGROUND_REMOVAL",
    "COLOR_GUIDED_GENERATION",
)
# Tasks whose output is the size of the input image: a size limit cannot be
# met by asking for a smaller output, only by refusing the request.
FIXED_SIZE_TASKS = frozenset({"INPAINTING", "OUTPAINTING", "BACKGROUND_REMOVAL"})
QUALITIES = ("standard", "premium")


@dataclass(frozen=True)
class TenantFacts:
    """Who is asking."""

    id: str
    tier: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestFacts:
    """What is asked for. `quality` is "standard" or "premium"."""

    task: str
    model: str
    width: int
    height: int
    count: int
    quality: str
    prompt_length: int = 0
    negative_prompt_length: int = 0
    input_images: int = 0
    cfg_scale: float = 0.0

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class UsageFacts:
    """The tenant's usage so far, as the gateway's ledger and limiters see it."""

    budget_used_fraction: float = 0.0
    images_today: int = 0
    images_this_minute: int = 0
    requests_this_minute: int = 0
    spent_today_micros: int = 0


@dataclass(frozen=True)
class Facts:
    """Everything one decision reads.

    `texts` maps a request field path (``text_to_image.text``) to its prompt
    text, for moderation. `size_options` lists the sizes the requested model
    accepts, or None when any size within its bounds is fine (Nova Canvas).
    """

    tenant: TenantFacts
    request: RequestFacts
    usage: UsageFacts = UsageFacts()
    texts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    size_options: tuple[tuple[int, int], ...] | None = None
