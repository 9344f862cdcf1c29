"""Behaviour knobs for the Bedrock emulator.

Tests and benchmarks need Bedrock's awkward behaviours on demand (slowness,
throttling, 500s, content filters), reproducibly; everything the emulator does
beyond the plain API is switched on here. The config is immutable: replace it
wholesale (``emulator.config = cfg.model_copy(update=...)``) to change it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EmulatorConfig(BaseModel):
    """What the emulator does besides answering valid requests correctly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "Simulated generation time per call in milliseconds. Rendering runs "
            "concurrently, so a call takes max(latency, render time)."
        ),
    )
    seed_latency_ms: dict[int, float] = Field(
        default_factory=dict,
        description=(
            "Per-seed latency overrides in milliseconds; a call with several images "
            "waits for the largest latency among its seeds. Lets a test decide which "
            "image finishes first."
        ),
    )
    images_per_minute: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Throttling quota: images admitted per sliding 60 s window. A call that "
            "would exceed it gets 429 ThrottlingException. None disables throttling."
        ),
    )
    fault_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Fraction of valid calls answered with 500 InternalServerException.",
    )
    fault_seed: int = Field(
        default=0,
        description="Seed of the random.Random deciding faults, so runs are reproducible.",
    )
    fault_seeds: frozenset[int] = Field(
        default_factory=frozenset,
        description=(
            "Calls whose imageGenerationConfig.seed (after defaults) is in this set always "
            "get 500 InternalServerException; lets a test fail exactly one image."
        ),
    )
    input_block_terms: tuple[str, ...] = Field(
        default=(),
        description=(
            "Case-insensitive substrings that, found in text, negativeText or maskPrompt, "
            "make the call fail with Bedrock's 400 input content-filter ValidationException. "
            "Stability calls (prompt, negative_prompt, search_prompt, select_prompt) instead "
            'get 200 {"finish_reasons": ["Filter reason: prompt"]}.'
        ),
    )
    output_block_terms: tuple[str, ...] = Field(
        default=(),
        description=(
            "Case-insensitive substrings that, found in text, make the call succeed (200) "
            "with images withheld and Bedrock's `error` string: the single image when one "
            "was asked for, otherwise every image at an odd index. In a Stability prompt "
            'they give 200 {"seeds": [s], "finish_reasons": ["Filter reason: output image"], '
            '"images": []}.'
        ),
    )
    input_image_block_terms: tuple[str, ...] = Field(
        default=(),
        description=(
            "Stability only: case-insensitive substrings that, found in a prompt of a call "
            "carrying an input image, stand for a flagged input image: 200 "
            '{"finish_reasons": ["Filter reason: input image"]}.'
        ),
    )
    inference_error_terms: tuple[str, ...] = Field(
        default=(),
        description=(
            "Stability only: case-insensitive substrings that, found in a prompt, make the "
            'model fail: 200 {"seeds": [s], "finish_reasons": ["Inference error"], '
            '"images": []}.'
        ),
    )
    model_errors: dict[str, Literal["throttled", "access_denied", "not_found", "unavailable"]] = (
        Field(
            default_factory=dict,
            description=(
                "Model id (as registered, without a `us.` prefix) -> the error every call to "
                "it gets before its body is read: 429 ThrottlingException, 403 "
                "AccessDeniedException (model access not granted), 404 "
                "ResourceNotFoundException, or 503 ServiceUnavailableException. Lets a test "
                "make one model of a fallback chain fail."
            ),
        )
    )
    guardrails: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description=(
            "ApplyGuardrail guardrails by id (any version answers): each blocks the "
            "case-insensitive substrings listed. A content block containing one gets "
            "GUARDRAIL_INTERVENED; an id not listed gets 404 ResourceNotFoundException."
        ),
    )
