"""The nova-canvas dialect: Titan's envelope plus `style` and VIRTUAL_TRY_ON;
golden bodies per task, and Nova's answers (maskImage)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.dialects import GeneratedImage, build_body, parse_response
from gateway.domain import (
    BackgroundRemoval,
    ColorGuidedGeneration,
    ImageJob,
    ImageVariation,
    Inpainting,
    Outpainting,
    Task,
    TextToImage,
    VirtualTryOn,
)
from gateway.enums import ControlMode, Dialect, OutpaintingMode, Quality
from gateway.errors import ImageFiltered
from tests.dialects.support import (
    IMAGE,
    MASK,
    NOVA,
    NOVA_CONFIG,
    OTHER,
    assert_plain_json,
    b64_image,
    check_golden,
    make_job,
    uncovered,
)


def nova(task: Task, **config: Any) -> ImageJob:
    return make_job(task, NOVA, NOVA_CONFIG, **config)


GARMENT = VirtualTryOn(
    IMAGE,
    OTHER,
    mask_type="GARMENT",
    garment_class="LONG_SLEEVE_SHIRT",
    mask_shape="CONTOUR",
    merge_style="SEAMLESS",
    preserve_body_pose="ON",
    preserve_hands="OFF",
    preserve_face="DEFAULT",
    long_sleeve_style="SLEEVE_UP",
    tucking_style="TUCKED",
    outer_layer_style="OPEN",
    return_mask=True,
)

CASES = [
    pytest.param(nova(TextToImage("a red fox")), 0, id="text-minimal"),
    pytest.param(
        nova(TextToImage("a red fox", negative_text="blurry", style="PHOTOREALISM")),
        1,
        id="text-style",
    ),
    pytest.param(
        nova(
            TextToImage(
                "a red fox",
                condition_image=IMAGE,
                control_mode=ControlMode.CANNY_EDGE,
                control_strength=0.7,
            ),
            quality=Quality.PREMIUM,
            width=1280,
            height=720,
        ),
        0,
        id="text-conditioned-premium",
    ),
    # Nova forbids width/height for editing: validation clears send_size.
    pytest.param(
        nova(Inpainting(IMAGE, mask_image=MASK, text="a moon", return_mask=True), send_size=False),
        0,
        id="inpaint-return-mask-no-size",
    ),
    pytest.param(
        nova(
            Outpainting(
                IMAGE,
                "a beach",
                mask_prompt="the dog",
                mode=OutpaintingMode.PRECISE,
                return_mask=True,
            ),
            send_size=False,
        ),
        2,
        id="outpaint-return-mask-no-size",
    ),
    pytest.param(
        nova(ImageVariation((IMAGE, OTHER), text="in winter", similarity_strength=0.9)),
        0,
        id="variation",
    ),
    pytest.param(
        nova(ColorGuidedGeneration("a vase", ("#FF0000",), reference_image=OTHER)),
        0,
        id="color-guided",
    ),
    pytest.param(nova(BackgroundRemoval(IMAGE)), 0, id="background-removal"),
    pytest.param(nova(GARMENT), 1, id="try-on-garment-everything"),
    pytest.param(
        nova(VirtualTryOn(IMAGE, OTHER, garment_class="UPPER_BODY")),
        0,
        id="try-on-garment-minimal",
    ),
    pytest.param(
        nova(VirtualTryOn(IMAGE, OTHER, mask_type="IMAGE", mask_image=MASK)),
        0,
        id="try-on-image-mask",
    ),
    pytest.param(
        nova(
            VirtualTryOn(
                IMAGE,
                OTHER,
                mask_type="PROMPT",
                mask_prompt="the jacket",
                mask_shape="BOUNDING_BOX",
                merge_style="BALANCED",
            )
        ),
        0,
        id="try-on-prompt-mask",
    ),
]


@pytest.mark.parametrize(("job", "index"), CASES)
def test_golden_body(request: pytest.FixtureRequest, job: ImageJob, index: int) -> None:
    check_golden(f"nova-canvas/{request.node.callspec.id}", build_body(job, index))


@pytest.mark.parametrize(("job", "index"), CASES)
def test_body_values_are_plain_json(job: ImageJob, index: int) -> None:
    assert_plain_json(build_body(job, index))


def test_every_nova_task_has_a_case() -> None:
    assert uncovered(CASES, Dialect.NOVA_CANVAS) == set()


def test_try_on_never_sends_a_size() -> None:
    """Nova rejects width/height for VIRTUAL_TRY_ON, whatever the job's send_size."""
    body = build_body(nova(GARMENT, send_size=True), 0)
    config: Any = body["imageGenerationConfig"]
    assert not {"width", "height"} & set(config)
    assert config == {"numberOfImages": 1, "seed": 12, "cfgScale": 6.5, "quality": "standard"}


def test_try_on_params() -> None:
    params: Any = build_body(nova(GARMENT), 0)["virtualTryOnParams"]
    assert params["sourceImage"] == b64_image(IMAGE.data)
    assert params["referenceImage"] == b64_image(OTHER.data)
    assert params["garmentBasedMask"]["garmentStyling"] == {
        "longSleeveStyle": "SLEEVE_UP",
        "tuckingStyle": "TUCKED",
        "outerLayerStyle": "OPEN",
    }
    assert params["returnMask"] is True


def test_try_on_image_mask_is_sent_unchanged() -> None:
    job = nova(VirtualTryOn(IMAGE, OTHER, mask_type="IMAGE", mask_image=MASK))
    params: Any = build_body(job, 0)["virtualTryOnParams"]
    assert params["imageBasedMask"] == {"maskImage": b64_image(MASK.data)}


def test_unknown_try_on_mask_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="mask type"):
        build_body(nova(VirtualTryOn(IMAGE, OTHER, mask_type="ELBOW")), 0)


def test_return_mask_false_is_not_sent() -> None:
    body = build_body(nova(Inpainting(IMAGE, mask_image=MASK), send_size=False), 0)
    assert "returnMask" not in body["inPaintingParams"]  # type: ignore[operator]


def answer(body: object) -> bytes:
    return json.dumps(body).encode()


def test_mask_image_comes_back_when_asked() -> None:
    job = nova(GARMENT)
    payload = answer({"images": [b64_image(IMAGE.data)], "maskImage": b64_image(MASK.data)})
    assert parse_response(job, payload) == GeneratedImage(IMAGE.data, MASK.data)


def test_output_filter_is_image_filtered() -> None:
    message = "All of the generated images have been blocked by our content filters."
    with pytest.raises(ImageFiltered, match="blocked by our content filters"):
        parse_response(nova(GARMENT), answer({"images": [], "error": message}))
