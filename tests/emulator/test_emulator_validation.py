"""Bedrock's validation rules: refused requests come back as ValidationException."""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Any

import pytest
from emulator_helpers import NOVA, TITAN_V1, TITAN_V2, box_mask, invoke, invoke_error, to_b64
from PIL import Image

SRC = to_b64(Image.new("RGB", (512, 512), (90, 120, 150)))
MASK = to_b64(box_mask((512, 512), (100, 100, 300, 300)))
SUFFIX = ", please reformat your input and try again."


def _text(text: str = "a cat", gen: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": text, **params}}
    if gen is not None:
        body["imageGenerationConfig"] = gen
    return body


def _inpaint(gen: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "taskType": "INPAINTING",
        "inPaintingParams": {"image": SRC, "maskImage": MASK, **params},
    }
    if gen is not None:
        body["imageGenerationConfig"] = gen
    return body


def _colors(colors: list[str]) -> dict[str, Any]:
    return {
        "taskType": "COLOR_GUIDED_GENERATION",
        "colorGuidedGenerationParams": {"text": "a vase", "colors": colors},
    }


def _png(image: Image.Image) -> str:
    return to_b64(image)


def _gif() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "GIF")
    return base64.b64encode(buf.getvalue()).decode()


def _translucent() -> str:
    return _png(Image.new("RGBA", (512, 512), (10, 20, 30, 128)))


CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("titan prompt too long", TITAN_V2, _text("x" * 536),
     "#/textToImageParams/text: expected maxLength: 512, actual: 536"),
    ("nova prompt too long", NOVA, _text("x" * 1025),
     "#/textToImageParams/text: expected maxLength: 1024, actual: 1025"),
    ("empty negative text", TITAN_V2, _text(negativeText=""),
     "#/textToImageParams/negativeText: expected minLength: 1, actual: 0"),
    ("titan size not in list", TITAN_V2, _text(gen={"width": 500, "height": 500}),
     "#/imageGenerationConfig: size 500x500 is not supported"),
    ("nova size not /16", NOVA, _text(gen={"width": 1000, "height": 1008}),
     "#/imageGenerationConfig: each side must be divisible by 16"),
    ("nova ratio", NOVA, _text(gen={"width": 320, "height": 1600}),
     "#/imageGenerationConfig: aspect ratio must be between 1:4 and 4:1"),
    ("nova pixels", NOVA, _text(gen={"width": 2048, "height": 2048}),
     "#/imageGenerationConfig: total pixel count must be less than 4194304"),
    ("nova side too small", NOVA, _text(gen={"width": 304, "height": 512}),
     "#/imageGenerationConfig: each side must be between 320 and 4096 pixels"),
    ("bad colour", TITAN_V2, _colors(["#FF0000", "red"]),
     "#/colorGuidedGenerationParams/colors/1: string [red] does not match pattern"),
    ("too many colours", NOVA, _colors(["#000000"] * 11),
     "#/colorGuidedGenerationParams/colors: expected maximum item count: 10, found: 11"),
    ("no colours", TITAN_V2, _colors([]),
     "#/colorGuidedGenerationParams/colors: expected minimum item count: 1, found: 0"),
    ("mask size mismatch", TITAN_V2, _inpaint(maskImage=to_b64(box_mask((256, 256), (0, 0, 9, 9)))),
     "#/inPaintingParams/maskImage: mask size 256x256 does not match image size 512x512"),
    ("grey mask", TITAN_V2, _inpaint(maskImage=_png(Image.new("RGB", (512, 512), (128,) * 3))),
     "#/inPaintingParams/maskImage: mask image must contain only pure black and pure white"),
    ("v1 colour guided", TITAN_V1, _colors(["#FF0000"]),
     "#/taskType: COLOR_GUIDED_GENERATION is not a valid enum value"),
    ("v1 background removal", TITAN_V1,
     {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": SRC}},
     "#/taskType: BACKGROUND_REMOVAL is not a valid enum value"),
    ("v1 conditioning", TITAN_V1, _text(conditionImage=SRC),
     "#/textToImageParams: extraneous key [conditionImage] is not permitted"),
    ("titan style", TITAN_V2, _text(style="PHOTOREALISM"),
     "#/textToImageParams: extraneous key [style] is not permitted"),
    ("nova width on inpainting", NOVA, _inpaint(gen={"width": 512, "height": 512}),
     "#/imageGenerationConfig: extraneous key [width] is not permitted"),
    ("non-image bytes", TITAN_V2, _inpaint(image=base64.b64encode(b"not an image").decode()),
     "#/inPaintingParams/image: unable to decode image"),
    ("gif image", NOVA, _inpaint(image=_gif()), "#/inPaintingParams/image: unable to decode image"),
    ("not base64", TITAN_V2, _inpaint(image="%%%not-base64%%%"),
     "#/inPaintingParams/image: image data is not valid base64"),
    ("both masks", TITAN_V2, _inpaint(maskPrompt="the sky"),
     "#/inPaintingParams: exactly one of [maskPrompt, maskImage] must be provided"),
    ("no mask", NOVA, {"taskType": "INPAINTING", "inPaintingParams": {"image": SRC}},
     "#/inPaintingParams: exactly one of [maskPrompt, maskImage] must be provided"),
    ("titan outpainting text", TITAN_V2,
     {"taskType": "OUTPAINTING", "outPaintingParams": {"image": SRC, "maskImage": MASK}},
     "#/outPaintingParams: required key [text] not found"),
    ("control without condition", NOVA, _text(controlStrength=0.5),
     "#/textToImageParams: conditionImage is required when controlMode or controlStrength"),
    ("control strength range", TITAN_V2, _text(conditionImage=SRC, controlStrength=1.5),
     "#/textToImageParams/controlStrength: 1.5 is not less or equal to 1"),
    ("similarity range", TITAN_V2,
     {"taskType": "IMAGE_VARIATION",
      "imageVariationParams": {"images": [SRC], "similarityStrength": 0.1}},
     "#/imageVariationParams/similarityStrength: 0.1 is not greater or equal to 0.2"),
    ("too many variation images", NOVA,
     {"taskType": "IMAGE_VARIATION", "imageVariationParams": {"images": [SRC] * 6}},
     "#/imageVariationParams/images: expected maximum item count: 5, found: 6"),
    ("cfg scale", TITAN_V2, _text(gen={"cfgScale": 11}),
     "#/imageGenerationConfig/cfgScale: 11 is not less or equal to 10"),
    ("cfg scale low", NOVA, _text(gen={"cfgScale": 1.0}),
     "#/imageGenerationConfig/cfgScale: 1 is not greater or equal to 1.1"),
    ("number of images", TITAN_V2, _text(gen={"numberOfImages": 6}),
     "#/imageGenerationConfig/numberOfImages: 6 is not less or equal to 5"),
    ("seed high", NOVA, _text(gen={"seed": 2147483647}),
     "#/imageGenerationConfig/seed: 2147483647 is not less or equal to 2147483646"),
    ("seed negative", TITAN_V2, _text(gen={"seed": -1}),
     "#/imageGenerationConfig/seed: -1 is not greater or equal to 0"),
    ("seed type", TITAN_V2, _text(gen={"seed": "5"}),
     "#/imageGenerationConfig/seed: expected type: Integer, found: String"),
    ("seed bool", TITAN_V2, _text(gen={"seed": True}),
     "#/imageGenerationConfig/seed: expected type: Integer, found: Boolean"),
    ("quality", NOVA, _text(gen={"quality": "ultra"}),
     "#/imageGenerationConfig/quality: ultra is not a valid enum value"),
    ("unknown top-level key", TITAN_V2, {**_text(), "foo": 1},
     "#: extraneous key [foo] is not permitted"),
    ("unknown params key", NOVA, _text(strength=1),
     "#/textToImageParams: extraneous key [strength] is not permitted"),
    ("missing task type", TITAN_V2, {"textToImageParams": {"text": "a"}},
     "#: required key [taskType] not found"),
    ("missing params", TITAN_V2, {"taskType": "TEXT_IMAGE", "inPaintingParams": {}},
     "#: required key [textToImageParams] not found"),
    ("params not object", TITAN_V2, {"taskType": "TEXT_IMAGE", "textToImageParams": "a cat"},
     "#/textToImageParams: expected type: JSONObject, found: String"),
    ("background removal config", TITAN_V2,
     {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": SRC},
      "imageGenerationConfig": {"seed": 1}},
     "#: extraneous key [imageGenerationConfig] is not permitted"),
    ("titan image too large", TITAN_V2,
     {"taskType": "BACKGROUND_REMOVAL",
      "backgroundRemovalParams": {"image": _png(Image.new("RGB", (1440, 512)))}},
     "#/backgroundRemovalParams/image: image dimensions 1440x512 exceed the maximum of 1408"),
    ("nova transparency", NOVA, _inpaint(image=_translucent()),
     "#/inPaintingParams/image: image must not contain transparent or translucent pixels"),
    ("nova input size", NOVA,
     {"taskType": "BACKGROUND_REMOVAL",
      "backgroundRemovalParams": {"image": _png(Image.new("RGB", (500, 500)))}},
     "#/backgroundRemovalParams/image: image dimensions 500x500 are not supported"),
]  # fmt: skip


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _drop_none(v) if isinstance(v, dict) else v for k, v in body.items() if v is not None
    }


@pytest.mark.parametrize(
    ("model", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_rule_violation_is_validation_exception(
    client: Any, model: str, body: dict[str, Any], expected: str
) -> None:
    message = await invoke_error(client, model, _drop_none(body), "ValidationException")
    assert message.startswith(f"Malformed input request: {expected}")
    assert message.endswith(SUFFIX)


async def test_prompt_too_long_has_bedrocks_exact_message(client: Any) -> None:
    message = await invoke_error(client, TITAN_V2, _text("x" * 536), "ValidationException")
    assert message == (
        "Malformed input request: #/textToImageParams/text: expected maxLength: 512, "
        "actual: 536, please reformat your input and try again."
    )


async def test_limits_that_differ_by_family_are_accepted_where_allowed(client: Any) -> None:
    long_prompt = await invoke(client, NOVA, _text("x" * 1024, gen={"width": 320, "height": 320}))
    assert len(long_prompt["images"]) == 1
    nova_no_text = {
        "taskType": "OUTPAINTING",
        "outPaintingParams": {"image": SRC, "maskImage": MASK},
    }
    assert len((await invoke(client, NOVA, nova_no_text))["images"]) == 1
    titan_wide = await invoke(client, TITAN_V2, _text(gen={"width": 1173, "height": 640}))
    assert len(titan_wide["images"]) == 1


async def test_input_image_over_5_mb_is_refused(client: Any) -> None:
    noise = Image.frombytes("RGB", (1400, 1400), os.urandom(1400 * 1400 * 3))
    big = to_b64(noise)
    assert len(base64.b64decode(big)) > 5 * 1024 * 1024
    body = {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": big}}
    with pytest.raises(client.exceptions.ValidationException) as info:
        # aiohttp warns about large raw-bytes bodies; a file object streams instead.
        await client.invoke_model(
            modelId=TITAN_V2,
            body=io.BytesIO(json.dumps(body).encode()),
            contentType="application/json",
        )
    message = info.value.response["Error"]["Message"]
    assert "#/backgroundRemovalParams/image: image size" in message
    assert "exceeds the maximum of 5242880" in message


async def test_malformed_json_body_is_validation_exception(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException) as info:
        await client.invoke_model(
            modelId=TITAN_V2, body=b"{not json", contentType="application/json"
        )
    assert "Malformed input request" in info.value.response["Error"]["Message"]
