"""The titan dialect (Titan Image Generator v1/v2): golden bodies per task,
and what a 200 answer becomes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.dialects import GeneratedImage, build_body, encode_body, parse_response
from gateway.domain import (
    BackgroundRemoval,
    ColorGuidedGeneration,
    ImageJob,
    ImageVariation,
    Inpainting,
    Outpainting,
    Task,
    TextToImage,
)
from gateway.enums import ControlMode, Dialect, OutpaintingMode, Quality
from gateway.errors import BackendUnavailable, ImageFiltered
from tests.dialects.support import (
    IMAGE,
    MASK,
    OTHER,
    TITAN_CONFIG,
    TITAN_V1,
    TITAN_V2,
    assert_plain_json,
    b64_image,
    check_golden,
    make_job,
    uncovered,
)


def titan(task: Task, model_id: str = TITAN_V2, **config: Any) -> ImageJob:
    return make_job(task, model_id, TITAN_CONFIG, **config)


CASES = [
    pytest.param(titan(TextToImage("a red fox")), 0, id="text-minimal"),
    pytest.param(
        titan(TextToImage("a red fox", negative_text=""), seed=7),
        3,
        id="text-empty-negative-omitted-seed-offset",
    ),
    pytest.param(
        titan(
            TextToImage(
                "a red fox",
                negative_text="blurry",
                condition_image=IMAGE,
                control_mode=ControlMode.SEGMENTATION,
                control_strength=0.0,
            ),
            quality=Quality.PREMIUM,
            cfg_scale=6.5,
            width=1152,
            height=768,
        ),
        1,
        id="text-conditioned-zero-strength-kept",
    ),
    pytest.param(titan(TextToImage("a red fox"), cfg_scale=None), 0, id="text-no-cfg-scale"),
    pytest.param(
        titan(TextToImage("a red fox", style="PHOTOREALISM")), 0, id="text-nova-style-dropped"
    ),
    pytest.param(
        titan(Inpainting(IMAGE, mask_prompt="the sky"), send_size=False),
        0,
        id="inpaint-mask-prompt-no-text-no-size",
    ),
    pytest.param(
        titan(Inpainting(IMAGE, mask_image=MASK, text="a moon", negative_text="stars")),
        2,
        id="inpaint-mask-image",
    ),
    pytest.param(
        titan(Inpainting(IMAGE, mask_prompt="the sky", text="a moon", return_mask=True)),
        0,
        id="inpaint-return-mask",
    ),
    pytest.param(
        titan(Outpainting(IMAGE, "a beach", mask_image=MASK, mode=OutpaintingMode.PRECISE)),
        0,
        id="outpaint-precise",
    ),
    pytest.param(
        titan(Outpainting(IMAGE, "a beach", mask_prompt="the dog", negative_text="people")),
        1,
        id="outpaint-default-mode-sent",
    ),
    pytest.param(
        titan(Outpainting(IMAGE, "a beach", mask_prompt="the dog", return_mask=True)),
        0,
        id="outpaint-return-mask",
    ),
    pytest.param(
        titan(ImageVariation((IMAGE, OTHER), text="in winter", similarity_strength=0.5)),
        4,
        id="variation-two-images",
    ),
    pytest.param(titan(ImageVariation((IMAGE,))), 0, id="variation-images-only"),
    pytest.param(
        titan(
            ColorGuidedGeneration(
                "a vase", ("#FF0000", "#00FF00"), negative_text="text", reference_image=OTHER
            )
        ),
        0,
        id="color-guided",
    ),
    pytest.param(
        titan(ColorGuidedGeneration("a vase", ("#123456",))), 1, id="color-guided-minimal"
    ),
    pytest.param(titan(BackgroundRemoval(IMAGE)), 3, id="background-removal-no-generation-config"),
    pytest.param(titan(TextToImage("a red fox"), TITAN_V1), 0, id="v1-text"),
    pytest.param(
        titan(Inpainting(IMAGE, mask_image=MASK, text="a moon"), TITAN_V1), 0, id="v1-inpaint"
    ),
    pytest.param(
        titan(Outpainting(IMAGE, "a beach", mask_image=MASK), TITAN_V1), 0, id="v1-outpaint"
    ),
    pytest.param(titan(ImageVariation((IMAGE,)), TITAN_V1), 0, id="v1-variation"),
]


@pytest.mark.parametrize(("job", "index"), CASES)
def test_golden_body(request: pytest.FixtureRequest, job: ImageJob, index: int) -> None:
    check_golden(f"titan/{request.node.callspec.id}", build_body(job, index))


@pytest.mark.parametrize(("job", "index"), CASES)
def test_body_values_are_plain_json(job: ImageJob, index: int) -> None:
    assert_plain_json(build_body(job, index))


def test_every_titan_task_has_a_case() -> None:
    assert uncovered(CASES, Dialect.TITAN) == set()


def test_seed_and_image_parameters() -> None:
    body = build_body(titan(Inpainting(IMAGE, mask_image=MASK, text="a moon"), seed=40), 2)
    params: Any = body["inPaintingParams"]
    assert body["imageGenerationConfig"]["seed"] == 42  # type: ignore[index]
    assert params["image"] == b64_image(IMAGE.data)
    assert params["maskImage"] == b64_image(MASK.data)  # Titan's convention: unchanged


def test_a_titan_body_never_carries_nova_fields() -> None:
    body = build_body(titan(TextToImage("a red fox", style="PHOTOREALISM")), 0)
    assert "style" not in body["textToImageParams"]  # type: ignore[operator]


def test_encode_body_is_the_json_of_build_body() -> None:
    job = titan(TextToImage("a red fox"))
    assert json.loads(encode_body(job, 1)) == build_body(job, 1)


PNG = IMAGE.data
JOB = titan(TextToImage("a red fox"))
MASK_JOB = titan(Inpainting(IMAGE, mask_prompt="the sky", return_mask=True))
ALL_FILTERED = "All of the generated images have been blocked by our content filters."
SOME_FILTERED = "Some of the generated images have been blocked by our content filters."


def answer(body: object) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("job", "body", "expected"),
    [
        (JOB, {"images": [b64_image(PNG)]}, GeneratedImage(PNG)),
        (JOB, {"images": [b64_image(PNG), "ignored"]}, GeneratedImage(PNG)),
        (JOB, {"images": [b64_image(PNG)], "error": SOME_FILTERED}, GeneratedImage(PNG)),
        # Titan returns the mask the task asked for; unasked, it is not passed on.
        (
            MASK_JOB,
            {"images": [b64_image(PNG)], "maskImage": b64_image(MASK.data)},
            GeneratedImage(PNG, MASK.data),
        ),
        (MASK_JOB, {"images": [b64_image(PNG)]}, GeneratedImage(PNG)),
        (JOB, {"images": [b64_image(PNG)], "maskImage": b64_image(MASK.data)}, GeneratedImage(PNG)),
    ],
    ids=["image", "first-image", "partial-filter", "mask", "mask-asked-none", "mask-unasked"],
)
def test_answer_with_an_image(job: ImageJob, body: object, expected: GeneratedImage) -> None:
    assert parse_response(job, answer(body)) == expected


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        (answer({"images": [], "error": ALL_FILTERED}), ImageFiltered, ALL_FILTERED),
        (answer({"error": ALL_FILTERED}), ImageFiltered, ALL_FILTERED),
        (answer({"images": []}), BackendUnavailable, "no image"),
        (answer({}), BackendUnavailable, "no image"),
        (answer({"images": ["***not base64***"]}), BackendUnavailable, "malformed body"),
        (answer({"images": [42]}), BackendUnavailable, "malformed body"),
        (answer({"images": "abcd"}), BackendUnavailable, "malformed body"),
        (answer(["not", "an", "object"]), BackendUnavailable, "malformed body"),
        (b"{not json", BackendUnavailable, "malformed body"),
        (
            answer({"images": [b64_image(PNG)], "maskImage": "%%%"}),
            BackendUnavailable,
            "malformed body",
        ),
    ],
    ids=[
        "error-only",
        "error-no-images-field",
        "empty-images",
        "empty-object",
        "bad-base64",
        "image-not-text",
        "images-not-a-list",
        "not-an-object",
        "not-json",
        "bad-mask",
    ],
)
def test_answer_without_a_usable_image(
    payload: bytes, error: type[Exception], message: str
) -> None:
    job = MASK_JOB if b"maskImage" in payload else JOB
    with pytest.raises(error, match=message):
        parse_response(job, payload)
