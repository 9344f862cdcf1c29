"""Prices per output image, by model, size class and quality, in micro-USD.

The defaults follow AWS's Bedrock price table (aws.amazon.com/bedrock/pricing):
Titan Image Generator bills 512x512-class images (at most 384x704 pixels'
worth) less than larger ones up to 1408x1408; Nova Canvas bills up to
1024x1024 and up to 2048x2048; the Stability AI models bill a flat price per
image whatever its size or quality. Editing tasks bill like generation.
A policy file's `pricing` overrides these per model; prices are data, not code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from policies.facts import QUALITIES

MAX_TITAN_512 = 384 * 704  # 270,336 pixels: Titan's 512x512 price class
MAX_TITAN = 1408 * 1408
MAX_1024 = 1024 * 1024
MAX_2048 = 2048 * 2048
MAX_FLAT = 64 * 1024 * 1024  # larger than any output: one class for a flat price


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

    def overridden(self, prices: Iterable[ModelPrice]) -> PriceTable:
        """This table with each of `prices` replacing its model's entry (or adding it)."""
        return PriceTable(MappingProxyType({**self.models, **{p.model: p for p in prices}}))

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
    sizes = (SizeClass(MAX_TITAN_512, 8_000, 10_000), SizeClass(MAX_TITAN, 10_000, 12_000))
    return ModelPrice(model, sizes)


def _flat(model: str, micros: int) -> ModelPrice:
    return ModelPrice(model, (SizeClass(MAX_FLAT, micros, micros),))


# Stability AI Image Services billed at one price.
_IMAGE_SERVICES = (
    "stability.stable-image-remove-background-v1:0",
    "stability.stable-image-erase-object-v1:0",
    "stability.stable-image-inpaint-v1:0",
    "stability.stable-image-search-replace-v1:0",
    "stability.stable-image-search-recolor-v1:0",
    "stability.stable-image-control-sketch-v1:0",
    "stability.stable-image-control-structure-v1:0",
    "stability.stable-image-style-guide-v1:0",
)

DEFAULT_PRICES: tuple[ModelPrice, ...] = (
    _titan("amazon.titan-image-generator-v1"),
    _titan("amazon.titan-image-generator-v2:0"),
    ModelPrice(
        "amazon.nova-canvas-v1:0",
        (SizeClass(MAX_1024, 40_000, 60_000), SizeClass(MAX_2048, 60_000, 80_000)),
    ),
    _flat("stability.stable-image-ultra-v1:1", 140_000),
    _flat("stability.stable-image-core-v1:1", 40_000),
    _flat("stability.sd3-5-large-v1:0", 80_000),
    *(_flat(model, 70_000) for model in _IMAGE_SERVICES),
    _flat("stability.stable-style-transfer-v1:0", 80_000),
    _flat("stability.stable-outpaint-v1:0", 60_000),
    _flat("stability.stable-fast-upscale-v1:0", 30_000),
    _flat("stability.stable-conservative-upscale-v1:0", 400_000),
    _flat("stability.stable-creative-upscale-v1:0", 600_000),
)


def default_price_table() -> PriceTable:
    return PriceTable.of(DEFAULT_PRICES)
