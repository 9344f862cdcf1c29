"""Nova Canvas VIRTUAL_TRY_ON through the real aiobotocore client.

Body shape from titan-api.md section 3 and AWS's virtual try-on page: a
sourceImage, a referenceImage and one mask object chosen by maskType.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from emulator_helpers import (
    NOVA,
    TITAN_V1,
    TITAN_V2,
    box_mask,
    decode_png,
    invoke,
    invoke_error,
    scene,
    to_b64,
)
from PIL import Image, ImageChops, ImageDraw, ImageStat

from gateway.emulator.tryon import GARMENT_BOXES

SOURCE_SIZE = (512, 768)  # not square, so a swapped width/height would show
SOURCE = scene(SOURCE_SIZE)
GARMENT_BLUE = (30, 60, 200)
MASK_BOX = (96, 192, 415, 543)
SUFFIX = ", please reformat your input and try again."


def _reference() -> Image.Image:
    """A blue garment on a white background: the try-on colour must be blue."""
    image = Image.new("RGB", (384, 512), (255, 255, 255))
    ImageDraw.Draw(image).rectangle((60, 80, 320, 440), fill=GARMENT_BLUE)
    return image


SRC_B64, REF_B64 = to_b64(SOURCE), to_b64(_reference())
MASK_B64 = to_b64(box_mask(SOURCE_SIZE, MASK_BOX))
MASKS: dict[str, dict[str, Any]] = {
    "IMAGE": {"imageBasedMask": {"maskImage": MASK_B64}},
    "GARMENT": {"garmentBasedMask": {"garmentClass": "UPPER_BODY"}},
    "PROMPT": {"promptBasedMask": {"maskPrompt": "the red ball"}},
}


def _try_on(
    mask_type: str = "GARMENT", gen: dict[str, Any] | None = None, **params: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "taskType": "VIRTUAL_TRY_ON",
        "virtualTryOnParams": {
            "sourceImage": SRC_B64,
            "referenceImage": REF_B64,
            "maskType": mask_type,
            **copy.deepcopy(MASKS.get(mask_type, {})),
            **params,
        },
    }
    if gen is not None:
        body["imageGenerationConfig"] = gen
    return body


def _changed(output: Image.Image) -> Image.Image:
    """L mask of the pixels that differ from the source (255 where changed)."""
    diff = ImageChops.difference(output.convert("RGB"), SOURCE).convert("L")
    return diff.point(lambda v: 255 if v else 0)


def _mean_inside(image: Image.Image, region: Image.Image) -> list[float]:
    return ImageStat.Stat(image.convert("RGB"), mask=region).mean


def _is_blue(color: list[float]) -> bool:
    red, green, blue = color
    return blue > red + 60 and blue > green + 60


# ------------------------------------------------------------- successes


@pytest.mark.parametrize("mask_type", ["IMAGE", "GARMENT", "PROMPT"])
async def test_each_mask_type_dresses_the_source_at_its_size(client: Any, mask_type: str) -> None:
    result = await invoke(client, NOVA, _try_on(mask_type, gen={"seed": 5, "numberOfImages": 2}))
    assert len(result["images"]) == 2
    assert "maskImage" not in result
    for data in result["images"]:
        output = decode_png(data)
        assert output.size == SOURCE_SIZE
        changed = _changed(output)
        assert changed.getbbox() is not None
        assert _is_blue(_mean_inside(output, changed)), "the garment takes the reference's colour"


async def test_image_mask_is_honoured_black_is_the_garment_area(client: Any) -> None:
    result = await invoke(client, NOVA, _try_on("IMAGE", gen={"seed": 1}))
    output = decode_png(result["images"][0])
    inside = Image.new("L", SOURCE_SIZE, 0)
    ImageDraw.Draw(inside).rectangle(MASK_BOX, fill=255)
    # BALANCED (the default) keeps every pixel outside the mask byte-identical.
    outside = Image.composite(output.convert("RGB"), SOURCE, inside)
    assert ImageChops.difference(outside, output.convert("RGB")).getbbox() is None
    assert (
        ImageChops.difference(
            Image.composite(SOURCE, output.convert("RGB"), inside), SOURCE
        ).getbbox()
        is None
    )
    assert _is_blue(_mean_inside(output, inside))


@pytest.mark.parametrize(
    ("garment_class", "upper"),
    [("UPPER_BODY", True), ("LONG_SLEEVE_SHIRT", True), ("LOWER_BODY", False), ("SHOES", False)],
)
async def test_garment_mask_sits_where_the_garment_class_is_worn(
    client: Any, garment_class: str, upper: bool
) -> None:
    body = _try_on(
        garmentBasedMask={"garmentClass": garment_class, "maskShape": "BOUNDING_BOX"},
        returnMask=True,
    )
    result = await invoke(client, NOVA, body)
    mask = decode_png(result["maskImage"])
    black = mask.convert("L").point(lambda v: 255 if v == 0 else 0)
    width, height = SOURCE_SIZE
    left, top, right, bottom = GARMENT_BOXES[garment_class][1]
    expected = (
        round(left * width),
        round(top * height),
        round(right * width) + 1,
        round(bottom * height) + 1,
    )
    assert black.getbbox() == expected
    centre = (expected[1] + expected[3]) / 2
    assert (centre < height / 2) is upper
    changed = _changed(decode_png(result["images"][0]))
    assert ImageChops.subtract(changed, black).getbbox() is None, "nothing changes outside"


async def test_garment_styling_changes_the_mask(client: Any) -> None:
    async def mask_for(styling: dict[str, str]) -> Image.Image:
        garment = {"garmentClass": "LONG_SLEEVE_SHIRT", "garmentStyling": styling}
        result = await invoke(client, NOVA, _try_on(garmentBasedMask=garment, returnMask=True))
        return decode_png(result["maskImage"]).convert("L")

    plain = await mask_for({})
    styled = await mask_for(
        {"longSleeveStyle": "SLEEVE_UP", "tuckingStyle": "TUCKED", "outerLayerStyle": "OPEN"}
    )
    # SLEEVE_UP narrows the sleeves and TUCKED shortens the shirt: a smaller box.
    plain_box, styled_box = ImageChops.invert(plain).getbbox(), ImageChops.invert(styled).getbbox()
    assert plain_box is not None
    assert styled_box is not None
    assert styled_box[2] - styled_box[0] < plain_box[2] - plain_box[0]
    assert styled_box[3] < plain_box[3]
    # OPEN leaves the centre of the chest as it was (white in the mask).
    assert styled.getpixel((SOURCE_SIZE[0] // 2, round(0.3 * SOURCE_SIZE[1]))) == 255
    assert plain.getpixel((SOURCE_SIZE[0] // 2, round(0.3 * SOURCE_SIZE[1]))) == 0


@pytest.mark.parametrize("mask_type", ["IMAGE", "GARMENT", "PROMPT"])
async def test_return_mask_returns_the_mask_used(client: Any, mask_type: str) -> None:
    result = await invoke(client, NOVA, _try_on(mask_type, gen={"seed": 9}, returnMask=True))
    mask = decode_png(result["maskImage"])
    assert mask.size == SOURCE_SIZE
    colors = {color for _, color in mask.convert("RGB").getcolors() or []}
    assert colors == {(0, 0, 0), (255, 255, 255)}, "pure black and white only"
    black = mask.convert("L").point(lambda v: 255 if v == 0 else 0)
    changed = _changed(decode_png(result["images"][0]))
    assert ImageChops.subtract(changed, black).getbbox() is None
    if mask_type == "IMAGE":
        assert (
            ImageChops.difference(mask.convert("RGB"), box_mask(SOURCE_SIZE, MASK_BOX)).getbbox()
            is None
        )


async def test_prompt_bounding_box_squares_off_the_prompt_mask(client: Any) -> None:
    async def mask_for(shape: str) -> Image.Image:
        prompt = {"maskPrompt": "the red ball", "maskShape": shape}
        result = await invoke(
            client, NOVA, _try_on("PROMPT", promptBasedMask=prompt, returnMask=True)
        )
        return decode_png(result["maskImage"]).convert("L").point(lambda v: 255 if v == 0 else 0)

    contour, box = await mask_for("CONTOUR"), await mask_for("BOUNDING_BOX")
    assert contour.getbbox() == box.getbbox()
    bbox = box.getbbox()
    assert bbox is not None
    area = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1])
    assert ImageStat.Stat(box).sum[0] / 255 == area
    assert ImageStat.Stat(contour).sum[0] / 255 < area


async def test_same_seed_same_bytes_other_seed_other_bytes(client: Any) -> None:
    first = await invoke(client, NOVA, _try_on(gen={"seed": 42}))
    again = await invoke(client, NOVA, _try_on(gen={"seed": 42}))
    other = await invoke(client, NOVA, _try_on(gen={"seed": 43}))
    assert first["images"] == again["images"]
    assert first["images"] != other["images"]


async def test_every_documented_field_is_accepted(client: Any) -> None:
    body = _try_on(
        garmentBasedMask={
            "maskShape": "CONTOUR",
            "garmentClass": "FULL_BODY_OUTFIT",
            "garmentStyling": {
                "longSleeveStyle": "SLEEVE_DOWN",
                "tuckingStyle": "UNTUCKED",
                "outerLayerStyle": "CLOSED",
            },
        },
        maskExclusions={
            "preserveBodyPose": "ON",
            "preserveHands": "OFF",
            "preserveFace": "DEFAULT",
        },
        mergeStyle="SEAMLESS",
        returnMask=False,
        gen={"numberOfImages": 5, "quality": "premium", "cfgScale": 6.5, "seed": 0},
    )
    result = await invoke(client, NOVA, body)
    assert len(result["images"]) == 5
    assert all(decode_png(data).size == SOURCE_SIZE for data in result["images"])
    assert "maskImage" not in result


@pytest.mark.parametrize("merge_style", ["BALANCED", "SEAMLESS", "DETAILED"])
async def test_merge_styles(client: Any, merge_style: str) -> None:
    result = await invoke(client, NOVA, _try_on("IMAGE", mergeStyle=merge_style))
    changed = _changed(decode_png(result["images"][0]))
    bbox = changed.getbbox()
    assert bbox is not None
    box = (MASK_BOX[0], MASK_BOX[1], MASK_BOX[2] + 1, MASK_BOX[3] + 1)
    if merge_style == "SEAMLESS":  # a feathered edge reaches just past the mask
        assert bbox != box
        assert bbox[0] >= box[0] - 8
        assert bbox[3] <= box[3] + 8
    else:
        assert bbox == box


# ------------------------------------------------------------- refusals


def _without(mask_type: str, *path: str) -> dict[str, Any]:
    """A valid body with one key removed; `path` runs from virtualTryOnParams."""
    body = _try_on(mask_type)
    node = body["virtualTryOnParams"]
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


def _with(mask_type: str, value: Any, *path: str) -> dict[str, Any]:
    """A valid body with one value set; `path` runs from virtualTryOnParams."""
    body = _try_on(mask_type)
    node = body["virtualTryOnParams"]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return body


def _translucent() -> str:
    return to_b64(Image.new("RGBA", (512, 512), (10, 20, 30, 128)))


P = "#/virtualTryOnParams"
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("no sourceImage", _without("GARMENT", "sourceImage"),
     f"{P}: required key [sourceImage] not found"),
    ("no referenceImage", _without("GARMENT", "referenceImage"),
     f"{P}: required key [referenceImage] not found"),
    ("no maskType", _without("GARMENT", "maskType"), f"{P}: required key [maskType] not found"),
    ("no params", {"taskType": "VIRTUAL_TRY_ON"}, "#: required key [virtualTryOnParams] not found"),
    ("IMAGE without imageBasedMask", _without("IMAGE", "imageBasedMask"),
     f"{P}: imageBasedMask is required when maskType is IMAGE"),
    ("IMAGE without maskImage", _without("IMAGE", "imageBasedMask", "maskImage"),
     f"{P}/imageBasedMask: required key [maskImage] not found"),
    ("GARMENT without garmentBasedMask", _without("GARMENT", "garmentBasedMask"),
     f"{P}: garmentBasedMask is required when maskType is GARMENT"),
    ("GARMENT without garmentClass", _without("GARMENT", "garmentBasedMask", "garmentClass"),
     f"{P}/garmentBasedMask: required key [garmentClass] not found"),
    ("PROMPT without promptBasedMask", _without("PROMPT", "promptBasedMask"),
     f"{P}: promptBasedMask is required when maskType is PROMPT"),
    ("PROMPT without maskPrompt", _without("PROMPT", "promptBasedMask", "maskPrompt"),
     f"{P}/promptBasedMask: required key [maskPrompt] not found"),
    ("empty maskPrompt", _with("PROMPT", "", "promptBasedMask", "maskPrompt"),
     f"{P}/promptBasedMask/maskPrompt: expected minLength: 1, actual: 0"),
    ("maskPrompt too long", _with("PROMPT", "x" * 1025, "promptBasedMask", "maskPrompt"),
     f"{P}/promptBasedMask/maskPrompt: expected maxLength: 1024, actual: 1025"),
    ("mask object of another maskType",
     _with("GARMENT", "a shirt", "promptBasedMask", "maskPrompt"),
     f"{P}: promptBasedMask is not permitted when maskType is GARMENT"),
    ("bad maskType", _with("GARMENT", "BODY", "maskType"),
     f"{P}/maskType: BODY is not a valid enum value"),
    ("bad garmentClass", _with("GARMENT", "HAT", "garmentBasedMask", "garmentClass"),
     f"{P}/garmentBasedMask/garmentClass: HAT is not a valid enum value"),
    ("bad garment maskShape", _with("GARMENT", "ELLIPSE", "garmentBasedMask", "maskShape"),
     f"{P}/garmentBasedMask/maskShape: ELLIPSE is not a valid enum value"),
    ("bad prompt maskShape", _with("PROMPT", "contour", "promptBasedMask", "maskShape"),
     f"{P}/promptBasedMask/maskShape: contour is not a valid enum value"),
    ("bad longSleeveStyle",
     _with("GARMENT", "ROLLED", "garmentBasedMask", "garmentStyling", "longSleeveStyle"),
     f"{P}/garmentBasedMask/garmentStyling/longSleeveStyle: ROLLED is not a valid enum value"),
    ("bad tuckingStyle",
     _with("GARMENT", "HALF", "garmentBasedMask", "garmentStyling", "tuckingStyle"),
     f"{P}/garmentBasedMask/garmentStyling/tuckingStyle: HALF is not a valid enum value"),
    ("bad outerLayerStyle",
     _with("GARMENT", "ZIPPED", "garmentBasedMask", "garmentStyling", "outerLayerStyle"),
     f"{P}/garmentBasedMask/garmentStyling/outerLayerStyle: ZIPPED is not a valid enum value"),
    ("bad preserveFace", _with("GARMENT", "YES", "maskExclusions", "preserveFace"),
     f"{P}/maskExclusions/preserveFace: YES is not a valid enum value"),
    ("bad mergeStyle", _with("GARMENT", "SMOOTH", "mergeStyle"),
     f"{P}/mergeStyle: SMOOTH is not a valid enum value"),
    ("returnMask not a boolean", _with("GARMENT", "true", "returnMask"),
     f"{P}/returnMask: expected type: Boolean, found: String"),
    ("garmentClass not a string", _with("GARMENT", 3, "garmentBasedMask", "garmentClass"),
     f"{P}/garmentBasedMask/garmentClass: expected type: String, found: Integer"),
    ("garmentBasedMask not an object", _with("GARMENT", "UPPER_BODY", "garmentBasedMask"),
     f"{P}/garmentBasedMask: expected type: JSONObject, found: String"),
    ("unknown params field", _with("GARMENT", "x", "colour"),
     f"{P}: extraneous key [colour] is not permitted"),
    ("text is not supported", _with("GARMENT", "a red shirt", "text"),
     f"{P}: extraneous key [text] is not permitted"),
    ("unknown styling field", _with("GARMENT", "ON", "garmentBasedMask", "garmentStyling", "fit"),
     f"{P}/garmentBasedMask/garmentStyling: extraneous key [fit] is not permitted"),
    ("unknown exclusion", _with("GARMENT", "ON", "maskExclusions", "preserveFeet"),
     f"{P}/maskExclusions: extraneous key [preserveFeet] is not permitted"),
    ("width given", _try_on(gen={"width": 512}),
     "#/imageGenerationConfig: extraneous key [width] is not permitted"),
    ("height given", _try_on(gen={"height": 768}),
     "#/imageGenerationConfig: extraneous key [height] is not permitted"),
    ("six images", _try_on(gen={"numberOfImages": 6}),
     "#/imageGenerationConfig/numberOfImages: 6 is not less or equal to 5"),
    ("mask of another size", _with("IMAGE", to_b64(box_mask((512, 512), (0, 0, 9, 9))),
                                   "imageBasedMask", "maskImage"),
     f"{P}/imageBasedMask/maskImage: mask size 512x512 does not match image size 512x768"),
    ("grey mask", _with("IMAGE", to_b64(Image.new("RGB", SOURCE_SIZE, (128, 128, 128))),
                        "imageBasedMask", "maskImage"),
     f"{P}/imageBasedMask/maskImage: mask image must contain only pure black and pure white"),
    ("source under Nova's minimum", _with("GARMENT", to_b64(scene((256, 256))), "sourceImage"),
     f"{P}/sourceImage: image dimensions 256x256 are not supported, each side must be between"),
    ("translucent reference", _with("GARMENT", _translucent(), "referenceImage"),
     f"{P}/referenceImage: image must not contain transparent or translucent pixels"),
    ("reference not an image", _with("GARMENT", "bm90IGFuIGltYWdl", "referenceImage"),
     f"{P}/referenceImage: unable to decode image"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
async def test_refused_try_on_is_validation_exception(
    client: Any, body: dict[str, Any], expected: str
) -> None:
    message = await invoke_error(client, NOVA, body, "ValidationException")
    assert message.startswith(f"Malformed input request: {expected}")
    assert message.endswith(SUFFIX)


@pytest.mark.parametrize("model", [TITAN_V1, TITAN_V2])
async def test_try_on_is_nova_canvas_only(client: Any, model: str) -> None:
    message = await invoke_error(client, model, _try_on(), "ValidationException")
    assert message == (
        "Malformed input request: #/taskType: VIRTUAL_TRY_ON is not a valid enum value" + SUFFIX
    )
