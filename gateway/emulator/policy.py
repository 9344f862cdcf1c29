"""Bedrock's operational behaviours: throttling, faults and content filters.

These decide *whether* a valid request is answered normally; they are kept out
of the HTTP layer so each can be reasoned about (and tested) on its own.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gateway.emulator.config import EmulatorConfig
from gateway.emulator.errors import (
    INPUT_BLOCKED_MESSAGE,
    INTERNAL,
    INTERNAL_MESSAGE,
    THROTTLED_MESSAGE,
    THROTTLING,
    EmulatorError,
    validation,
)
from gateway.emulator.rules import ValidatedRequest
from gateway.emulator.stability import StabilityRequest

WINDOW_SECONDS = 60.0
ALL_BLOCKED = "All of the generated images have been blocked by our content filters."
SOME_BLOCKED = "Some of the generated images have been blocked by our content filters."
# Stability's finish_reasons (null = success); filtered calls are HTTP 200.
PROMPT_FILTERED = "Filter reason: prompt"
INPUT_IMAGE_FILTERED = "Filter reason: input image"
OUTPUT_IMAGE_FILTERED = "Filter reason: output image"
INFERENCE_ERROR = "Inference error"


def _contains_any(texts: Iterable[str], terms: Sequence[str]) -> bool:
    lowered = [t.lower() for t in texts if t]
    return any(term.lower() in text for term in terms if term for text in lowered)


def check_input_filter(config: EmulatorConfig, req: ValidatedRequest) -> None:
    """Bedrock's input deflection: a 400 ValidationException with its fixed message."""
    texts = (req.text, req.negative_text, req.mask_prompt or "")
    if _contains_any(texts, config.input_block_terms):
        raise validation(INPUT_BLOCKED_MESSAGE)


@dataclass(frozen=True)
class OutputFilter:
    """Which of a call's images the output filter withholds, and the `error` to report."""

    kept_seeds: tuple[int, ...]
    error: str | None


def stability_input_reason(config: EmulatorConfig, req: StabilityRequest) -> str | None:
    """Stability's input deflection: a finish reason (answered with 200), or None.

    The same `input_block_terms` as Titan's 400 block the prompts; the
    `input_image_block_terms` stand in for a flagged input image, so they
    only apply to calls that carry one.
    """
    if _contains_any(req.texts, config.input_block_terms):
        return PROMPT_FILTERED
    if req.has_input_image and _contains_any(req.texts, config.input_image_block_terms):
        return INPUT_IMAGE_FILTERED
    return None


def stability_output_reason(config: EmulatorConfig, req: StabilityRequest) -> str | None:
    """Why a Stability call that ran returns no image (output filter, model error), or None."""
    if _contains_any((req.prompt,), config.output_block_terms):
        return OUTPUT_IMAGE_FILTERED
    if _contains_any(req.texts, config.inference_error_terms):
        return INFERENCE_ERROR
    return None


def output_filter(config: EmulatorConfig, req: ValidatedRequest) -> OutputFilter:
    """Drop the only image, or every odd-indexed one, when the text has a blocked term."""
    seeds = req.seeds
    if not _contains_any((req.text,), config.output_block_terms):
        return OutputFilter(seeds, None)
    kept = tuple(seed for index, seed in enumerate(seeds) if len(seeds) > 1 and index % 2 == 0)
    return OutputFilter(kept, SOME_BLOCKED if kept else ALL_BLOCKED)


class Throttle:
    """A sliding 60 s window over admitted images."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._admitted: deque[tuple[float, int]] = deque()
        self._count = 0

    def admit(self, quota: int | None, images: int) -> None:
        """Record `images` or raise 429 ThrottlingException if the window is full."""
        if quota is None:
            return
        now = self._clock()
        while self._admitted and self._admitted[0][0] <= now - WINDOW_SECONDS:
            self._count -= self._admitted.popleft()[1]
        if self._count + images > quota:
            raise EmulatorError(429, THROTTLING, THROTTLED_MESSAGE)
        self._admitted.append((now, images))
        self._count += images

    def reset(self) -> None:
        self._admitted.clear()
        self._count = 0


class FaultInjector:
    """Reproducible 500s: a seeded coin per call, plus seeds that always fail."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def check(self, config: EmulatorConfig, req: ValidatedRequest) -> None:
        self.check_seed(config, req.generation.seed if req.generation is not None else None)

    def check_seed(self, config: EmulatorConfig, seed: int | None) -> None:
        """Fail a call whose seed (after defaults) is a fault seed, or by the seeded coin."""
        if seed is not None and seed in config.fault_seeds:
            raise EmulatorError(500, INTERNAL, INTERNAL_MESSAGE)
        if config.fault_rate > 0 and self._rng.random() < config.fault_rate:
            raise EmulatorError(500, INTERNAL, INTERNAL_MESSAGE)


def latency_seconds(config: EmulatorConfig, seeds: Sequence[int]) -> float:
    """The call's simulated latency: the slowest of its seeds."""
    per_seed = [config.seed_latency_ms.get(seed, config.latency_ms) for seed in seeds]
    return max(per_seed, default=config.latency_ms) / 1000.0
