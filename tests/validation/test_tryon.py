"""Nova Canvas virtual try-on: each mask type, its own fields and Nova's values."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain import TaskType, VirtualTryOn
from gateway.registry import ModelRegistry
from gateway.validation import decode_request
from tests.validation.support import (
    NOVA,
    Build,
    check_rule,
    input_image,
    mask_png,
    png,
    request,
    webp,
)
from titan.gateway.v1 import tasks_pb2

PERSON, GARMENT = png(512, 768), png(512, 512, (200, 10, 10))
MASK = mask_png(512, 768)
IMAGE, PROMPT = tasks_pb2.TRY_ON_MASK_TYPE_IMAGE, tasks_pb2.TRY_ON_MASK_TYPE_PROMPT


def try_on(config: dict[str, Any] | None = None, **fields: Any) -> Build:
    task = {"source_image": PERSON, "reference_image": GARMENT, **fields}
    return lambda: request(NOVA, config, virtual_try_on=task)


def garment(**fields: Any) -> Build:
    return try_on(garment_class="UPPER_BODY", **fields)


def test_garment_mask_with_every_option(registry: ModelRegistry) -> None:
    build = garment(
        mask_shape="CONTOUR",
        merge_style=tasks_pb2.TRY_ON_MERGE_STYLE_SEAMLESS,
        preserve_body_pose="DEFAULT",
        preserve_hands="OFF",
        preserve_face="ON",
        long_sleeve_style="SLEEVE_UP",
        tucking_style="TUCKED",
        outer_layer_style="OPEN",
        return_mask=True,
        config={"number_of_images": 3},
    )
    job = decode_request(build(), registry)
    assert job.task == VirtualTryOn(
        input_image(PERSON),
        input_image(GARMENT),
        "GARMENT",
        garment_class="UPPER_BODY",
        mask_shape="CONTOUR",
        merge_style="SEAMLESS",
        preserve_body_pose="DEFAULT",
        preserve_hands="OFF",
        preserve_face="ON",
        long_sleeve_style="SLEEVE_UP",
        tucking_style="TUCKED",
        outer_layer_style="OPEN",
        return_mask=True,
    )
    assert job.task_type is TaskType.VIRTUAL_TRY_ON
    config = job.config
    assert (config.count, config.width, config.height, config.send_size) == (3, 512, 768, False)
    assert (config.cfg_scale, config.seed) == (6.5, 12)  # Nova's defaults


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(
            try_on(garment_class="SHOES"),
            VirtualTryOn(input_image(PERSON), input_image(GARMENT), garment_class="SHOES"),
            id="garment-by-default",
        ),
        pytest.param(
            try_on(mask_type=IMAGE, mask_image=MASK),
            VirtualTryOn(
                input_image(PERSON), input_image(GARMENT), "IMAGE", mask_image=input_image(MASK)
            ),
            id="image",
        ),
        pytest.param(
            try_on(mask_type=PROMPT, mask_prompt="the jacket", mask_shape="BOUNDING_BOX"),
            VirtualTryOn(
                input_image(PERSON),
                input_image(GARMENT),
                "PROMPT",
                mask_prompt="the jacket",
                mask_shape="BOUNDING_BOX",
            ),
            id="prompt",
        ),
    ],
)
def test_mask_types(registry: ModelRegistry, build: Build, expected: VirtualTryOn) -> None:
    assert decode_request(build(), registry).task == expected


CASES = [
    # each mask type's required field
    ("garment-class-missing", try_on(), "virtual_try_on.garment_class",
     ["required for mask_type GARMENT", "UPPER_BODY"]),
    ("garment-class-unknown", try_on(garment_class="SHIRT"), "virtual_try_on.garment_class",
     ["must be one of", "LONG_SLEEVE_SHIRT", "OTHER_FOOTWEAR", "'SHIRT'"]),
    ("garment-class-lower-case", try_on(garment_class="upper_body"),
     "virtual_try_on.garment_class", ["'upper_body'"]),
    ("image-mask-missing", try_on(mask_type=IMAGE), "virtual_try_on.mask_image",
     ["required for mask_type IMAGE"]),
    ("image-mask-size", try_on(mask_type=IMAGE, mask_image=mask_png(512, 512)),
     "virtual_try_on.mask_image",
     ["same size as virtual_try_on.source_image (512x768)", "got 512x512"]),
    ("image-mask-grey", try_on(mask_type=IMAGE, mask_image=mask_png(512, 768, other=(7, 7, 7))),
     "virtual_try_on.mask_image", ["pure black"]),
    ("prompt-missing", try_on(mask_type=PROMPT), "virtual_try_on.mask_prompt", ["required"]),
    ("prompt-too-long", try_on(mask_type=PROMPT, mask_prompt="p" * 1025),
     "virtual_try_on.mask_prompt", ["at most 1024", NOVA]),
    # Nova's value lists
    ("mask-shape", garment(mask_shape="ROUND"), "virtual_try_on.mask_shape",
     ["CONTOUR, BOUNDING_BOX, DEFAULT", "'ROUND'"]),
    ("preserve-face", garment(preserve_face="YES"), "virtual_try_on.preserve_face",
     ["ON, OFF, DEFAULT", "'YES'"]),
    ("preserve-hands", garment(preserve_hands="on"), "virtual_try_on.preserve_hands", ["'on'"]),
    ("preserve-pose", garment(preserve_body_pose="KEEP"), "virtual_try_on.preserve_body_pose",
     ["ON, OFF, DEFAULT"]),
    ("long-sleeve", garment(long_sleeve_style="ROLLED"), "virtual_try_on.long_sleeve_style",
     ["SLEEVE_DOWN, SLEEVE_UP"]),
    ("tucking", garment(tucking_style="HALF"), "virtual_try_on.tucking_style",
     ["UNTUCKED, TUCKED"]),
    ("outer-layer", garment(outer_layer_style="ZIPPED"), "virtual_try_on.outer_layer_style",
     ["CLOSED, OPEN"]),
    ("merge-style-unknown", garment(merge_style=9), "virtual_try_on.merge_style",
     ["BALANCED, SEAMLESS, DETAILED", "unknown value 9"]),
    ("mask-type-unknown", garment(mask_type=7), "virtual_try_on.mask_type",
     ["GARMENT, IMAGE, PROMPT", "unknown value 7"]),
    # fields of another mask type
    ("garment-class-with-image", try_on(mask_type=IMAGE, mask_image=MASK, garment_class="SHOES"),
     "virtual_try_on.garment_class", ["must not be set for mask_type IMAGE", "only GARMENT"]),
    ("mask-shape-with-image", try_on(mask_type=IMAGE, mask_image=MASK, mask_shape="CONTOUR"),
     "virtual_try_on.mask_shape", ["mask_type IMAGE", "only GARMENT and PROMPT"]),
    ("styling-with-prompt", try_on(mask_type=PROMPT, mask_prompt="a", tucking_style="TUCKED"),
     "virtual_try_on.tucking_style", ["must not be set for mask_type PROMPT"]),
    ("prompt-with-garment", garment(mask_prompt="the shirt"), "virtual_try_on.mask_prompt",
     ["must not be set for mask_type GARMENT", "only PROMPT"]),
    ("mask-image-with-garment", garment(mask_image=MASK), "virtual_try_on.mask_image",
     ["must not be set for mask_type GARMENT"]),
    # images and config
    ("source-missing", garment(source_image=b""), "virtual_try_on.source_image", ["required"]),
    ("reference-transparent", garment(reference_image=png(512, 512, (1, 2, 3, 0), "RGBA")),
     "virtual_try_on.reference_image", ["transparent", NOVA]),
    ("source-webp", garment(source_image=webp(512, 768)), "virtual_try_on.source_image",
     ["PNG or JPEG", "WebP is not accepted by " + NOVA]),
    ("source-not-16", garment(source_image=png(500, 768)), "virtual_try_on.source_image",
     ["divisible by 16"]),
    ("width-set", garment(config={"width": 512}), "config.width",
     ["must not be set for virtual_try_on", NOVA, "input image's size"]),
    ("aspect-ratio-set", garment(config={"aspect_ratio": "1:1"}), "config.aspect_ratio",
     ["must not be set for virtual_try_on"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "field", "words"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_try_on_rule(registry: ModelRegistry, build: Build, field: str, words: list[str]) -> None:
    check_rule(registry, build, field, words)
