"""The stability dialect: golden bodies for every task of all 16 Stability
model ids, mask inversion, and every finish reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.dialects import GeneratedImage, build_body, parse_response
from gateway.dialects.stability import DEFAULT_STRENGTH
from gateway.domain import (
    BackgroundRemoval,
    ConservativeUpscale,
    CreativeUpscale,
    EraseObject,
    ExpandCanvas,
    FastUpscale,
    ImageJob,
    ImageToImage,
    Inpainting,
    SearchAndRecolor,
    SearchAndReplace,
    StyleGuide,
    StyleTransfer,
    Task,
    TextToImage,
)
from gateway.enums import ControlMode, Dialect, OutputFormat, TaskType
from gateway.errors import BackendUnavailable, ContentBlocked, GatewayError, ImageFiltered
from tests.dialects.support import (
    IMAGE,
    MASK,
    MASK_BOX,
    OTHER,
    STABILITY_CONFIG,
    assert_plain_json,
    b64_image,
    check_golden,
    decode_image,
    jobs_of,
    make_job,
    registry,
    uncovered,
)

SD35 = "stability.sd3-5-large-v1:0"
ULTRA = "stability.stable-image-ultra-v1:1"
CORE = "stability.stable-image-core-v1:1"


def service(name: str) -> str:
    return f"stability.{name}-v1:0"


def stability(task: Task, model_id: str, **config: Any) -> ImageJob:
    return make_job(task, model_id, STABILITY_CONFIG, **config)


CASES = [
    pytest.param(stability(TextToImage("a red fox"), SD35), 0, id="sd35-text-minimal"),
    pytest.param(
        stability(
            TextToImage("a red fox", negative_text="blurry"),
            SD35,
            aspect_ratio="16:9",
            output_format=OutputFormat.WEBP,
        ),
        2,
        id="sd35-text-full",
    ),
    pytest.param(
        stability(ImageToImage(IMAGE, "in winter", negative_text="people", strength=0.7), SD35),
        0,
        id="sd35-image-to-image",
    ),
    pytest.param(
        stability(ImageToImage(IMAGE, "in winter"), SD35, aspect_ratio="1:1"),
        0,
        id="sd35-image-to-image-default-strength-no-aspect-ratio",
    ),
    pytest.param(
        stability(TextToImage("a red fox"), ULTRA, aspect_ratio="21:9", seed=0),
        0,
        id="ultra-text-seed-zero-kept",
    ),
    pytest.param(
        stability(ImageToImage(IMAGE, "in winter"), ULTRA, output_format=OutputFormat.JPEG),
        1,
        id="ultra-image-to-image-no-mode",
    ),
    pytest.param(
        stability(TextToImage("a red fox", negative_text="blurry"), CORE, aspect_ratio="2:3"),
        0,
        id="core-text",
    ),
    pytest.param(
        stability(
            Inpainting(
                IMAGE,
                mask_image=MASK,
                text="a moon",
                negative_text="stars",
                grow_mask=8,
                style="photographic",
            ),
            service("stable-image-inpaint"),
        ),
        0,
        id="inpaint-everything",
    ),
    pytest.param(
        stability(Inpainting(IMAGE, text="a moon"), service("stable-image-inpaint")),
        0,
        id="inpaint-alpha-no-mask",
    ),
    pytest.param(
        stability(
            EraseObject(IMAGE, mask_image=MASK, grow_mask=0), service("stable-image-erase-object")
        ),
        0,
        id="erase-zero-grow-mask-kept",
    ),
    pytest.param(
        stability(
            SearchAndReplace(
                IMAGE, "the sweater", "a jacket", negative_text="logo", grow_mask=3, style="anime"
            ),
            service("stable-image-search-replace"),
        ),
        0,
        id="search-replace",
    ),
    pytest.param(
        stability(
            SearchAndRecolor(IMAGE, "the jacket", "pink", negative_text="red", grow_mask=20),
            service("stable-image-search-recolor"),
        ),
        0,
        id="search-recolor",
    ),
    pytest.param(
        stability(
            BackgroundRemoval(IMAGE),
            service("stable-image-remove-background"),
            output_format=OutputFormat.WEBP,
        ),
        0,
        id="remove-background-no-seed",
    ),
    pytest.param(
        stability(
            TextToImage(
                "a house by a river",
                negative_text="people",
                condition_image=OTHER,
                control_mode=ControlMode.SKETCH,
                control_strength=0.6,
                style="line-art",
            ),
            service("stable-image-control-sketch"),
        ),
        0,
        id="control-sketch",
    ),
    pytest.param(
        stability(
            TextToImage(
                "a tunnel of sparks", condition_image=OTHER, control_mode=ControlMode.STRUCTURE
            ),
            service("stable-image-control-structure"),
        ),
        0,
        id="control-structure",
    ),
    pytest.param(
        stability(
            StyleGuide(
                IMAGE, "a metropolis", negative_text="cars", fidelity=0.8, style="neon-punk"
            ),
            service("stable-image-style-guide"),
            aspect_ratio="9:16",
        ),
        0,
        id="style-guide",
    ),
    pytest.param(
        stability(
            StyleTransfer(
                IMAGE,
                OTHER,
                text="a statue",
                negative_text="blur",
                style_strength=0.0,
                composition_fidelity=0.9,
                change_strength=0.5,
            ),
            "stability.stable-style-transfer-v1:0",
        ),
        0,
        id="style-transfer-everything",
    ),
    pytest.param(
        stability(StyleTransfer(IMAGE, OTHER), "stability.stable-style-transfer-v1:0"),
        0,
        id="style-transfer-no-prompt",
    ),
    pytest.param(
        stability(
            ExpandCanvas(IMAGE, left=100, down=50, text="a beach", creativity=0.7, style="enhance"),
            "stability.stable-outpaint-v1:0",
        ),
        0,
        id="outpaint-only-growing-sides",
    ),
    pytest.param(
        stability(FastUpscale(IMAGE), "stability.stable-fast-upscale-v1:0"),
        0,
        id="fast-upscale-no-seed",
    ),
    pytest.param(
        stability(
            ConservativeUpscale(IMAGE, "a cat", negative_text="noise", creativity=0.35),
            "stability.stable-conservative-upscale-v1:0",
        ),
        0,
        id="conservative-upscale",
    ),
    pytest.param(
        stability(
            CreativeUpscale(IMAGE, "a cat", creativity=0.3, style="digital-art"),
            "stability.stable-creative-upscale-v1:0",
            output_format=OutputFormat.JPEG,
        ),
        0,
        id="creative-upscale",
    ),
]


@pytest.mark.parametrize(("job", "index"), CASES)
def test_golden_body(request: pytest.FixtureRequest, job: ImageJob, index: int) -> None:
    check_golden(f"stability/{request.node.callspec.id}", build_body(job, index))


@pytest.mark.parametrize(("job", "index"), CASES)
def test_body_values_are_plain_json(job: ImageJob, index: int) -> None:
    assert_plain_json(build_body(job, index))


def test_every_stability_model_and_task_has_a_case() -> None:
    stability_models = [m for m in registry().models if m.dialect is Dialect.STABILITY]
    assert len(stability_models) == 16
    assert uncovered(CASES, Dialect.STABILITY) == set()


def test_mode_is_sent_only_for_sd35_image_to_image() -> None:
    modes = {
        (job.model.model_id, job.task_type): build_body(job, 0).get("mode")
        for job in jobs_of(CASES)
        if job.model.model_id in {SD35, ULTRA, CORE}
    }
    assert {key: mode for key, mode in modes.items() if mode} == {
        (SD35, TaskType.IMAGE_TO_IMAGE): "image-to-image"
    }


def test_image_to_image_strength_defaults_to_0_35() -> None:
    body = build_body(stability(ImageToImage(IMAGE, "in winter"), ULTRA), 0)
    assert body["strength"] == DEFAULT_STRENGTH == 0.35


def test_seed_is_the_jobs_seed_plus_the_index() -> None:
    body = build_body(stability(TextToImage("a red fox"), SD35, seed=4_294_967_290), 4)
    assert body["seed"] == 4_294_967_294


def test_input_images_are_sent_as_given() -> None:
    body = build_body(
        stability(StyleTransfer(IMAGE, OTHER), "stability.stable-style-transfer-v1:0"), 0
    )
    assert (body["init_image"], body["style_image"]) == (
        b64_image(IMAGE.data),
        b64_image(OTHER.data),
    )


@pytest.mark.parametrize(
    "job",
    [
        stability(
            Inpainting(IMAGE, mask_image=MASK, text="a moon"), service("stable-image-inpaint")
        ),
        stability(EraseObject(IMAGE, mask_image=MASK), service("stable-image-erase-object")),
    ],
    ids=["inpaint", "erase"],
)
def test_mask_is_inverted_for_stability(job: ImageJob) -> None:
    """The API's black region (replace/erase) is Stability's white (repaint)."""
    mask = decode_image(str(build_body(job, 0)["mask"]))
    inside, outside = (MASK_BOX[0] + 4, MASK_BOX[1] + 4), (2, 2)

    assert mask.format == "PNG"
    assert mask.mode == "L"
    assert mask.size == (MASK.width, MASK.height)
    assert (mask.getpixel(inside), mask.getpixel(outside)) == (255, 0)


def answer(body: object) -> bytes:
    return json.dumps(body).encode()


PNG = IMAGE.data
JOB = stability(TextToImage("a red fox"), SD35)


def test_null_finish_reason_with_an_image() -> None:
    payload = answer({"seeds": [1000], "finish_reasons": [None], "images": [b64_image(PNG)]})
    assert parse_response(JOB, payload) == GeneratedImage(PNG)


def test_no_finish_reasons_at_all_with_an_image() -> None:
    assert parse_response(JOB, answer({"images": [b64_image(PNG)]})) == GeneratedImage(PNG)


FAILURES = [
    pytest.param(
        {"finish_reasons": ["Filter reason: prompt"]},
        ContentBlocked,
        "Filter reason: prompt",
        id="prompt-filtered-no-seeds-no-images",
    ),
    pytest.param(
        {"seeds": [1], "finish_reasons": ["Filter reason: input image"], "images": []},
        ContentBlocked,
        "Filter reason: input image",
        id="input-image-filtered",
    ),
    pytest.param(
        {"finish_reasons": ["Filter reason: output image"]},
        ImageFiltered,
        "Filter reason: output image",
        id="output-image-filtered",
    ),
    pytest.param(
        # Even with an image: a non-null reason means the image is not to be used.
        {"seeds": [1], "finish_reasons": ["Filter reason: output image"], "images": ["AAAA"]},
        ImageFiltered,
        "Filter reason: output image",
        id="output-image-filtered-with-image",
    ),
    pytest.param(
        {"finish_reasons": ["Inference error"]},
        BackendUnavailable,
        "the model failed: Inference error",
        id="inference-error",
    ),
    pytest.param(
        {"finish_reasons": ["Something new"]},
        BackendUnavailable,
        "Something new",
        id="unknown-reason",
    ),
    pytest.param(
        {"seeds": [1], "finish_reasons": [None], "images": []},
        BackendUnavailable,
        "no image",
        id="null-reason-empty-images",
    ),
    pytest.param(
        {"finish_reasons": [None]}, BackendUnavailable, "no image", id="null-reason-no-images"
    ),
    pytest.param({}, BackendUnavailable, "no image", id="empty-object"),
    pytest.param(
        {"finish_reasons": [None], "images": ["***"]},
        BackendUnavailable,
        "malformed body",
        id="bad-base64",
    ),
    pytest.param(
        {"finish_reasons": "Filter reason: prompt"},
        BackendUnavailable,
        "malformed body",
        id="finish-reasons-not-a-list",
    ),
    pytest.param([None], BackendUnavailable, "malformed body", id="not-an-object"),
]


@pytest.mark.parametrize(("body", "error", "message"), FAILURES)
def test_answer_without_a_usable_image(
    body: object, error: type[GatewayError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        parse_response(JOB, answer(body))
    assert type(caught.value) is error


def test_malformed_json_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="malformed body"):
        parse_response(JOB, b"<html>")
