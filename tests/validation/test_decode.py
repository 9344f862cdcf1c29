"""Valid requests decode to the right domain objects, with defaults applied."""

from __future__ import annotations

import pytest

from gateway.domain import (
    BackgroundRemoval,
    ColorGuidedGeneration,
    ControlMode,
    ImageConfig,
    ImageVariation,
    Inpainting,
    InputImage,
    Outpainting,
    OutpaintingMode,
    Quality,
    TaskType,
    TextToImage,
)
from gateway.registry import ModelRegistry
from gateway.validation import decode_request
from tests.validation.support import NOVA, TITAN_V1, TITAN_V2, jpeg, mask_png, png, request
from titan.gateway.v1 import tasks_pb2


def test_text_to_image_defaults_titan(registry: ModelRegistry) -> None:
    job = decode_request(request(text_to_image={"text": "  a cat  "}), registry)
    assert job.task == TextToImage(text="  a cat  ")  # whitespace is kept
    assert job.config == ImageConfig(
        count=1, width=1024, height=1024, cfg_scale=8.0, seed=42, quality=Quality.STANDARD
    )
    assert job.model.model_id == TITAN_V2  # empty model_id → registry default
    assert job.task_type is TaskType.TEXT_IMAGE
    assert job.client_request_id == ""


def test_text_to_image_defaults_nova(registry: ModelRegistry) -> None:
    job = decode_request(request(NOVA, text_to_image={"text": "a cat"}), registry)
    assert (job.config.cfg_scale, job.config.seed) == (6.5, 12)
    assert (job.config.width, job.config.height, job.config.send_size) == (1024, 1024, True)
    assert job.model.model_id == NOVA


def test_explicit_config_is_kept(registry: ModelRegistry) -> None:
    config = {
        "number_of_images": 5,
        "width": 1173,
        "height": 640,
        "cfg_scale": 1.1,
        "seed": 2_147_483_642,
        "quality": tasks_pb2.QUALITY_PREMIUM,
    }
    req = request(TITAN_V1, config, text_to_image={"text": "x"})
    req.client_request_id = "req-1"
    job = decode_request(req, registry)
    # cfg_scale is a proto float: 1.1 arrives as 1.10000002 and is given back as 1.1.
    assert job.config == ImageConfig(5, 1173, 640, 1.1, 2_147_483_642, Quality.PREMIUM)
    assert job.seed_for(4) == 2_147_483_646
    assert job.client_request_id == "req-1"


def test_text_to_image_with_conditioning(registry: ModelRegistry) -> None:
    cond = {
        "condition_image": png(640, 384),
        "control_mode": tasks_pb2.CONTROL_MODE_SEGMENTATION,
        "control_strength": 0.7,
    }
    job = decode_request(request(text_to_image={"text": "a", "conditioning": cond}), registry)
    assert isinstance(job.task, TextToImage)
    assert job.task.condition_image == InputImage(png(640, 384), "PNG", 640, 384)
    assert job.task.control_mode is ControlMode.SEGMENTATION
    assert job.task.control_strength == 0.7


def test_conditioning_defaults_are_not_sent(registry: ModelRegistry) -> None:
    cond = {"condition_image": jpeg(512, 512)}
    job = decode_request(request(text_to_image={"text": "a", "conditioning": cond}), registry)
    assert isinstance(job.task, TextToImage)
    assert job.task.condition_image is not None
    assert job.task.condition_image.format == "JPEG"
    assert (job.task.control_mode, job.task.control_strength) == (None, None)


@pytest.mark.parametrize(
    ("model", "size", "send_size"),
    [
        pytest.param(TITAN_V2, (512, 512), True, id="titan-legal-size-sent"),
        pytest.param(TITAN_V2, (500, 300), False, id="titan-odd-size-not-sent"),
        pytest.param(TITAN_V1, (1152, 768), True, id="titan-v1-legal-size-sent"),
        pytest.param(NOVA, (512, 512), False, id="nova-never-sent"),
        pytest.param(NOVA, (1008, 704), False, id="nova-odd-size"),
    ],
)
def test_inpainting_output_is_input_size(
    registry: ModelRegistry, model: str, size: tuple[int, int], send_size: bool
) -> None:
    task = {"image": png(*size), "mask_prompt": "the cup", "text": "a vase"}
    job = decode_request(request(model, inpainting=task), registry)
    assert job.task == Inpainting(
        image=InputImage(png(*size), "PNG", *size), mask_prompt="the cup", text="a vase"
    )
    assert (job.config.width, job.config.height) == size
    assert job.config.send_size is send_size


def test_inpainting_with_mask_image_and_no_text(registry: ModelRegistry) -> None:
    task = {"image": jpeg(768, 768), "mask_image": mask_png(768, 768)}
    job = decode_request(request(inpainting=task), registry)
    assert isinstance(job.task, Inpainting)
    assert job.task.mask_image == InputImage(mask_png(768, 768), "PNG", 768, 768)
    assert (job.task.text, job.task.mask_prompt, job.task.negative_text) == (None, None, None)


def test_titan_inpainting_accepts_its_own_size(registry: ModelRegistry) -> None:
    task = {"image": png(512, 512), "mask_prompt": "sky"}
    req = request(TITAN_V2, {"width": 512, "height": 512}, inpainting=task)
    assert decode_request(req, registry).config.send_size is True


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param(tasks_pb2.OUTPAINTING_MODE_UNSPECIFIED, OutpaintingMode.DEFAULT, id="default"),
        pytest.param(tasks_pb2.OUTPAINTING_MODE_PRECISE, OutpaintingMode.PRECISE, id="precise"),
    ],
)
def test_outpainting(registry: ModelRegistry, mode: int, expected: OutpaintingMode) -> None:
    task = {"image": png(384, 576), "mask_prompt": "the dog", "text": "a beach", "mode": mode}
    job = decode_request(request(outpainting=task, config={"number_of_images": 2}), registry)
    assert job.task == Outpainting(
        image=InputImage(png(384, 576), "PNG", 384, 576),
        text="a beach",
        mask_prompt="the dog",
        mode=expected,
    )
    assert (job.config.count, job.config.width, job.config.height) == (2, 384, 576)


def test_image_variation(registry: ModelRegistry) -> None:
    task = {"images": [png(512, 512), jpeg(640, 480)], "similarity_strength": 0.2}
    job = decode_request(request(image_variation=task), registry)
    assert isinstance(job.task, ImageVariation)
    assert [(i.format, i.width, i.height) for i in job.task.images] == [
        ("PNG", 512, 512),
        ("JPEG", 640, 480),
    ]
    assert job.task.similarity_strength == 0.2
    assert (job.config.width, job.config.height) == (1024, 1024)


def test_image_variation_similarity_defaults_to_unset(registry: ModelRegistry) -> None:
    req = request(image_variation={"images": [png()], "text": "   "}, config={"width": 768})
    req.config.height = 1152
    job = decode_request(req, registry)
    assert job.task == ImageVariation((InputImage(png(), "PNG", 512, 512),))  # blank text: None
    assert (job.config.width, job.config.height) == (768, 1152)


@pytest.mark.parametrize("model", [TITAN_V2, NOVA])
def test_background_removal(registry: ModelRegistry, model: str) -> None:
    req = request(model, {"number_of_images": 1}, background_removal={"image": png(640, 480)})
    job = decode_request(req, registry)
    assert job.task == BackgroundRemoval(InputImage(png(640, 480), "PNG", 640, 480))
    assert (job.config.count, job.config.width, job.config.height) == (1, 640, 480)
    assert job.config.send_size is False
    assert job.config.cfg_scale == job.model.limits.default_cfg_scale
    assert job.config.seed == job.model.limits.default_seed


def test_background_removal_ignores_other_config(registry: ModelRegistry) -> None:
    config = {"width": 1, "height": 1, "cfg_scale": float("nan"), "seed": -5}
    job = decode_request(request(config=config, background_removal={"image": png()}), registry)
    assert (job.config.width, job.config.height, job.config.seed) == (512, 512, 42)


def test_color_guided_generation(registry: ModelRegistry) -> None:
    task = {
        "text": "a poster",
        "colors": ["#ff00aa", "#1A2b3C"],
        "negative_text": "text",
        "reference_image": png(1024, 1024),
    }
    req = request(NOVA, {"width": 2048, "height": 1024}, color_guided_generation=task)
    job = decode_request(req, registry)
    assert job.task == ColorGuidedGeneration(
        text="a poster",
        colors=("#FF00AA", "#1A2B3C"),
        negative_text="text",
        reference_image=InputImage(png(1024, 1024), "PNG", 1024, 1024),
    )
    assert (job.config.width, job.config.height) == (2048, 1024)


@pytest.mark.parametrize(
    ("model", "length"),
    [
        pytest.param(TITAN_V2, 512, id="titan-512"),
        pytest.param(NOVA, 1024, id="nova-1024"),
    ],
)
def test_longest_prompt_is_accepted(registry: ModelRegistry, model: str, length: int) -> None:
    text = "é" * length  # characters, not bytes
    task = {"text": text, "negative_text": text}
    assert decode_request(request(model, text_to_image=task), registry).task == TextToImage(
        text, text
    )


def test_titan_accepts_transparent_input(registry: ModelRegistry) -> None:
    image = png(512, 512, (0, 0, 0, 0), "RGBA")
    job = decode_request(request(background_removal={"image": image}), registry)
    assert isinstance(job.task, BackgroundRemoval)


def test_nova_accepts_opaque_rgba_input(registry: ModelRegistry) -> None:
    image = png(512, 512, (9, 9, 9, 255), "RGBA")
    job = decode_request(request(NOVA, background_removal={"image": image}), registry)
    assert isinstance(job.task, BackgroundRemoval)
