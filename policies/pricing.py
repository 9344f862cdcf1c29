"""Prices per output image, by model, size class and quality, in micro-USD.

The defaults (used when a policy file has no `pricing`) follow the gateway's
pricing issue and shared/titan-api.md §8/§10; editing tasks bill like
generation. Confirm them against aws.amazon.com/bedrock/pricing and override
them in the policy file: prices are data, not code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from policies.facts import QUALITIES

MAX_1024 = 1024 * 1024
MAX_2048 = 2048 * 2048


@dataclass(frozen=True)
class SizeClass:
    """Images with at most `max_pixels` pixels cost these amounts each."""

    max_pixels: int
    standard_micros: int
    premium_micros: int

    def micros(self, quality: str) -> int | None:
        if quality == "standard":
            return self.standard_micros
        if quality == "premium":
            return self.premium_micros
        return None


@dataclass(frozen=True)
class ModelPrice:
    """A model's size classes, in ascending order of `max_pixels`."""

    model: str
    sizes: tuple[SizeClass, ...]

    def size_class(self, pixels: int) -> SizeClass | None:
        return next((s for s in self.sizes if pixels <= s.max_pixels), None)


@dataclass(frozen=True)
class PriceTable:
    """Prices by model id."""

    models: Mapping[str, ModelPrice]

    @classmethod
    def of(cls, prices: Iterable[ModelPrice]) -> PriceTable:
        return cls(MappingProxyType({p.model: p for p in prices}))

    def __contains__(self, model: object) -> bool:
        return model in self.models

    def price_micros(self, model: str, width: int, height: int, quality: str) -> int | None:
        """Price of one image, or None: unknown model or quality, or no size class fits."""
        entry = self.models.get(model)
        if entry is None or width < 1 or height < 1 or quality not in QUALITIES:
            return None
        size = entry.size_class(width * height)
        return size.micros(quality) if size is not None else None


def _titan(model: str) -> ModelPrice:
    sizes = (SizeClass(MAX_1024, 8_000, 10_000), SizeClass(MAX_2048, 10_000, 12_000))
    return ModelPrice(model, sizes)


DEFAULT_PRICES: tuple[ModelPrice, ...] = (
    _titan("amazon.titan-image-generator-v1"),
    _titan("amazon.titan-image-generator-v2:0"),
    ModelPrice(
        "amazon.nova-canvas-v1:0",
        (SizeClass(MAX_1024, 40_000, 60_000), SizeClass(MAX_2048, 60_000, 80_000)),
    ),
)


def default_price_table() -> PriceTable:
    return PriceTable.of(DEFAULT_PRICES)
