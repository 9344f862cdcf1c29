"""The facts a decision is made from: tenant, request, usage so far, prompt texts.

The gateway builds these from a validated request; the engine never sees
protobuf. Every field here except `RequestFacts.request_key` is visible to
rule conditions (see `policies.conditions` for the CEL names).
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
    "IMAGE_TO_IMAGE",
    "FAST_UPSCALE",
    "CONSERVATIVE_UPSCALE",
    "CREATIVE_UPSCALE",
    "SEARCH_AND_REPLACE",
    "SEARCH_AND_RECOLOR",
    "ERASE_OBJECT",
    "EXPAND_CANVAS",
    "STYLE_GUIDE",
    "STYLE_TRANSFER",
    "CONTROL_SKETCH",
    "CONTROL_STRUCTURE",
    "VIRTUAL_TRY_ON",
)
# Tasks whose output size follows the input image (the same size, or a fixed
# multiple or extension of it): a size limit cannot be met by asking for a
# smaller output, only by refusing the request.
FIXED_SIZE_TASKS = frozenset(
    {
        "INPAINTING",
        "OUTPAINTING",
        "BACKGROUND_REMOVAL",
        "SEARCH_AND_REPLACE",
        "SEARCH_AND_RECOLOR",
        "ERASE_OBJECT",
        "VIRTUAL_TRY_ON",
        "STYLE_TRANSFER",
        "CONTROL_SKETCH",
        "CONTROL_STRUCTURE",
        "IMAGE_TO_IMAGE",
        "FAST_UPSCALE",
        "CONSERVATIVE_UPSCALE",
        "CREATIVE_UPSCALE",
        "EXPAND_CANVAS",
    }
)
QUALITIES = ("standard", "premium")


@dataclass(frozen=True)
class TenantFacts:
    """Who is asking."""

    id: str
    tier: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestFacts:
    """What is asked for. `quality` is "standard" or "premium".

    `request_key` is not a condition variable: it keys `route` splits that are
    ``sticky: request`` (the gateway sets it to the caller's client request
    id, or its own request id); empty means "bucket by tenant instead".
    """

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
    request_key: str = ""

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
