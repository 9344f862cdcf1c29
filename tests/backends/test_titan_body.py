"""build_body: the exact Bedrock JSON body per task, one table row per case."""

from __future__ import annotations

import base64

import pytest

from gateway.backends.titan_body import build_body
from gateway.domain import (
    BackgroundRemoval,
    ColorGuidedGeneration,
    ImageJob,
    ImageVariation,
    Inpainting,
    InputImage,
    Outpainting,
    TextToImage,
)
from gateway.enums import ControlMode, OutpaintingMode, Quality
from tests.backends.support import make_job

IMAGE = InputImage(b"\x89PNG image bytes", "PNG", 512, 512)
MASK = InputImage(b"\x89PNG mask bytes", "PNG", 512, 512)
OTHER = InputImage(b"\xff\xd8 jpeg bytes", "JPEG", 512, 512)
IMAGE_B64 = base64.b64encode(IMAGE.data).decode("ascii")
MASK_B64 = base64.b64encode(MASK.data).decode("ascii")
OTHER_B64 = base64.b64encode(OTHER.data).decode("ascii")


def generation(seed: int = 42, *, size: bool = True, **overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "numberOfImages": 1,
        "seed": seed,
        "cfgScale": 8.0,
        "quality": "standard",
    }
    if size:
        config |= {"width": 512, "height": 512}
    return config | overrides


CASES = [
    pytest.param(
        make_job(TextToImage("a red fox")),
        0,
        {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a red fox"},
            "imageGenerationConfig": generation(42),
        },
        id="text-minimal",
    ),
    pytest.param(
        make_job(TextToImage("a red fox", negative_text=""), seed=7),
        3,
        {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a red fox"},
            "imageGenerationConfig": generation(10),
        },
        id="text-empty-negative-omitted-seed-offset",
    ),
    pytest.param(
        make_job(
            TextToImage(
                "a red fox",
                negative_text="blurry",
                condition_image=IMAGE,
                control_mode=ControlMode.SEGMENTATION,
                control_strength=0.0,
            ),
            quality=Quality.PREMIUM,
            cfg_scale=6.5,
            width=1024,
            height=768,
        ),
        1,
        {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {
                "text": "a red fox",
                "negativeText": "blurry",
                "conditionImage": IMAGE_B64,
                "controlMode": "SEGMENTATION",
                "controlStrength": 0.0,
            },
            "imageGenerationConfig": generation(
                43, cfgScale=6.5, quality="premium", width=1024, height=768
            ),
        },
        id="text-conditioned-zero-strength-kept",
    ),
    pytest.param(
        make_job(Inpainting(IMAGE, mask_prompt="the sky"), send_size=False),
        0,
        {
            "taskType": "INPAINTING",
            "inPaintingParams": {"image": IMAGE_B64, "maskPrompt": "the sky"},
            "imageGenerationConfig": generation(42, size=False),
        },
        id="inpaint-mask-prompt-no-text-no-size",
    ),
    pytest.param(
        make_job(Inpainting(IMAGE, mask_image=MASK, text="a moon", negative_text="stars")),
        2,
        {
            "taskType": "INPAINTING",
            "inPaintingParams": {
                "image": IMAGE_B64,
                "maskImage": MASK_B64,
                "text": "a moon",
                "negativeText": "stars",
            },
            "imageGenerationConfig": generation(44),
        },
        id="inpaint-mask-image",
    ),
    pytest.param(
        make_job(Outpainting(IMAGE, "a beach", mask_image=MASK, mode=OutpaintingMode.PRECISE)),
        0,
        {
            "taskType": "OUTPAINTING",
            "outPaintingParams": {
                "image": IMAGE_B64,
                "maskImage": MASK_B64,
                "text": "a beach",
                "outPaintingMode": "PRECISE",
            },
            "imageGenerationConfig": generation(42),
        },
        id="outpaint-precise",
    ),
    pytest.param(
        make_job(Outpainting(IMAGE, "a beach", mask_prompt="the dog", negative_text="people")),
        1,
        {
            "taskType": "OUTPAINTING",
            "outPaintingParams": {
                "image": IMAGE_B64,
                "maskPrompt": "the dog",
                "text": "a beach",
                "negativeText": "people",
                "outPaintingMode": "DEFAULT",
            },
            "imageGenerationConfig": generation(43),
        },
        id="outpaint-default-mode-sent",
    ),
    pytest.param(
        make_job(ImageVariation((IMAGE, OTHER), text="in winter", similarity_strength=0.5)),
        4,
        {
            "taskType": "IMAGE_VARIATION",
            "imageVariationParams": {
                "images": [IMAGE_B64, OTHER_B64],
                "text": "in winter",
                "similarityStrength": 0.5,
            },
            "imageGenerationConfig": generation(46),
        },
        id="variation-two-images",
    ),
    pytest.param(
        make_job(ImageVariation((IMAGE,))),
        0,
        {
            "taskType": "IMAGE_VARIATION",
            "imageVariationParams": {"images": [IMAGE_B64]},
            "imageGenerationConfig": generation(42),
        },
        id="variation-images-only",
    ),
    pytest.param(
        make_job(
            ColorGuidedGeneration(
                "a vase", ("#FF0000", "#00FF00"), negative_text="text", reference_image=OTHER
            )
        ),
        0,
        {
            "taskType": "COLOR_GUIDED_GENERATION",
            "colorGuidedGenerationParams": {
                "text": "a vase",
                "negativeText": "text",
                "colors": ["#FF0000", "#00FF00"],
                "referenceImage": OTHER_B64,
            },
            "imageGenerationConfig": generation(42),
        },
        id="color-guided",
    ),
    pytest.param(
        make_job(ColorGuidedGeneration("a vase", ("#123456",))),
        1,
        {
            "taskType": "COLOR_GUIDED_GENERATION",
            "colorGuidedGenerationParams": {"text": "a vase", "colors": ["#123456"]},
            "imageGenerationConfig": generation(43),
        },
        id="color-guided-minimal",
    ),
    pytest.param(
        make_job(BackgroundRemoval(IMAGE)),
        3,
        {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": IMAGE_B64}},
        id="background-removal-no-generation-config",
    ),
]


@pytest.mark.parametrize(("job", "index", "expected"), CASES)
def test_build_body(job: ImageJob, index: int, expected: dict[str, object]) -> None:
    assert build_body(job, index) == expected


@pytest.mark.parametrize(("job", "index", "expected"), CASES)
def test_body_values_are_plain_json(job: ImageJob, index: int, expected: object) -> None:
    """Enum members go out as plain strings, so the body survives json round-trips."""
    body = build_body(job, index)
    for params in body.values():
        if isinstance(params, dict):
            for value in params.values():
                assert type(value) in {str, int, float, list}
