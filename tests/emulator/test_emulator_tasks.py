"""Every task type through the real aiobotocore client: outputs a user can check."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from emulator_helpers import (
    NOVA,
    TITAN_V1,
    TITAN_V2,
    box_mask,
    decode_png,
    invoke,
    scene,
    to_b64,
)
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps, ImageStat

SIZE = (512, 512)
GEN = {"width": 512, "height": 512, "seed": 7}
MASK_BOX = (128, 160, 383, 351)


def _bodies(model: str) -> dict[str, dict[str, Any]]:
    src = to_b64(scene(SIZE))
    edit_gen = {"seed": 7} if model == NOVA else GEN
    return {
        "TEXT_IMAGE": {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a lighthouse at dusk"},
            "imageGenerationConfig": GEN,
        },
        "INPAINTING": {
            "taskType": "INPAINTING",
            "inPaintingParams": {"image": src, "maskPrompt": "the red ball", "text": "a cat"},
            "imageGenerationConfig": edit_gen,
        },
        "OUTPAINTING": {
            "taskType": "OUTPAINTING",
            "outPaintingParams": {
                "image": src,
                "maskImage": to_b64(box_mask(SIZE, MASK_BOX)),
                "text": "a beach",
            },
            "imageGenerationConfig": edit_gen,
        },
        "IMAGE_VARIATION": {
            "taskType": "IMAGE_VARIATION",
            "imageVariationParams": {"images": [src], "text": "watercolour"},
            "imageGenerationConfig": GEN,
        },
        "COLOR_GUIDED_GENERATION": {
            "taskType": "COLOR_GUIDED_GENERATION",
            "colorGuidedGenerationParams": {"text": "a vase", "colors": ["#FF0000", "#00FF00"]},
            "imageGenerationConfig": GEN,
        },
        "BACKGROUND_REMOVAL": {
            "taskType": "BACKGROUND_REMOVAL",
            "backgroundRemovalParams": {"image": src},
        },
    }


CASES = [
    (model, task)
    for model in (TITAN_V1, TITAN_V2, NOVA)
    for task in _bodies(model)
    if not (model == TITAN_V1 and task in ("COLOR_GUIDED_GENERATION", "BACKGROUND_REMOVAL"))
]


@pytest.mark.parametrize(("model", "task"), CASES)
async def test_every_task_returns_png_of_right_size_and_mode(
    client: Any, model: str, task: str
) -> None:
    result = await invoke(client, model, _bodies(model)[task])
    assert "error" not in result
    assert len(result["images"]) == 1
    image = decode_png(result["images"][0])
    assert image.size == SIZE
    assert image.mode == ("RGBA" if task == "BACKGROUND_REMOVAL" else "RGB")


def _text_body(text: str, seed: int, count: int = 1) -> dict[str, Any]:
    return {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": text},
        "imageGenerationConfig": {**GEN, "seed": seed, "numberOfImages": count},
    }


async def test_same_prompt_and_seed_give_identical_bytes(client: Any) -> None:
    first = await invoke(client, TITAN_V2, _text_body("a red fox", 11))
    again = await invoke(client, TITAN_V2, _text_body("a red fox", 11))
    other_seed = await invoke(client, TITAN_V2, _text_body("a red fox", 12))
    other_text = await invoke(client, TITAN_V2, _text_body("a blue fox", 11))
    assert first["images"] == again["images"]
    assert first["images"] != other_seed["images"]
    assert first["images"] != other_text["images"]


async def test_number_of_images_uses_consecutive_seeds(client: Any) -> None:
    batch = await invoke(client, NOVA, _text_body("mountains", 100, count=3))
    assert len(batch["images"]) == 3
    assert len(set(batch["images"])) == 3
    third_alone = await invoke(client, NOVA, _text_body("mountains", 102))
    assert batch["images"][2] == third_alone["images"][0]


def _outside_is_identical(output: Image.Image, source: Image.Image, region: Image.Image) -> bool:
    """True when every pixel where `region` is 0 equals the source pixel."""
    diff = ImageChops.difference(output.convert("RGB"), source.convert("RGB"))
    outside = ImageOps.invert(region)
    return Image.composite(diff, Image.new("RGB", diff.size), outside).getbbox() is None


def _mean_diff(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    diff = ImageChops.difference(a.convert("RGB").crop(box), b.convert("RGB").crop(box))
    return sum(ImageStat.Stat(diff).mean) / 3


@pytest.mark.parametrize("model", [TITAN_V2, NOVA])
async def test_inpainting_keeps_pixels_outside_the_mask(client: Any, model: str) -> None:
    source = scene(SIZE)
    body = {
        "taskType": "INPAINTING",
        "inPaintingParams": {
            "image": to_b64(source),
            "maskImage": to_b64(box_mask(SIZE, MASK_BOX)),
            "text": "a sleeping cat",
        },
        "imageGenerationConfig": {"seed": 3},
    }
    output = decode_png((await invoke(client, model, body))["images"][0])
    region = Image.new("L", SIZE, 0)
    ImageDraw.Draw(region).rectangle(MASK_BOX, fill=255)
    assert _outside_is_identical(output, source, region)
    assert _mean_diff(output, source, MASK_BOX) > 10


async def test_inpainting_mask_prompt_mask_is_returned_and_respected(client: Any) -> None:
    source = scene(SIZE)
    body = {
        "taskType": "INPAINTING",
        "inPaintingParams": {
            "image": to_b64(source),
            "maskPrompt": "the ball",
            "returnMask": True,
        },
    }
    result = await invoke(client, NOVA, body)
    mask = decode_png(result["maskImage"])
    assert mask.size == SIZE
    colors = {c for _, c in mask.convert("RGB").getcolors(4) or []}
    assert colors == {(0, 0, 0), (255, 255, 255)}
    region = ImageOps.invert(mask.convert("L"))  # black in the mask = replaced
    covered = region.histogram()[255] / (SIZE[0] * SIZE[1])
    assert 0.15 < covered < 0.35
    assert _outside_is_identical(decode_png(result["images"][0]), source, region)


async def test_outpainting_precise_keeps_masked_region(client: Any) -> None:
    source = scene(SIZE)
    body = {
        "taskType": "OUTPAINTING",
        "outPaintingParams": {
            "image": to_b64(source),
            "maskImage": to_b64(box_mask(SIZE, MASK_BOX)),
            "text": "a wide landscape",
            "outPaintingMode": "PRECISE",
        },
        "imageGenerationConfig": GEN,
    }
    output = decode_png((await invoke(client, TITAN_V2, body))["images"][0])
    kept = output.crop(MASK_BOX)
    assert ImageChops.difference(kept, source.crop(MASK_BOX)).getbbox() is None
    assert _mean_diff(output, source, (0, 0, 512, 120)) > 10


async def test_outpainting_default_may_touch_only_the_boundary(client: Any) -> None:
    source = scene(SIZE)
    body = {
        "taskType": "OUTPAINTING",
        "outPaintingParams": {
            "image": to_b64(source),
            "maskImage": to_b64(box_mask(SIZE, MASK_BOX)),
            "text": "a wide landscape",
        },
        "imageGenerationConfig": GEN,
    }
    output = decode_png((await invoke(client, TITAN_V2, body))["images"][0])
    x0, y0, x1, y1 = MASK_BOX
    interior = (x0 + 8, y0 + 8, x1 - 8, y1 - 8)
    assert ImageChops.difference(output.crop(interior), source.crop(interior)).getbbox() is None


async def test_background_removal_makes_background_transparent(client: Any) -> None:
    disc = Image.new("RGB", (400, 300), (255, 255, 255))
    ImageDraw.Draw(disc).ellipse((100, 50, 300, 250), fill=(220, 20, 20))
    body = {"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": to_b64(disc)}}
    output = decode_png((await invoke(client, TITAN_V2, body))["images"][0])
    assert output.mode == "RGBA"
    assert output.size == (400, 300)
    for corner in ((0, 0), (399, 0), (0, 299), (399, 299), (20, 150)):
        assert output.getchannel("A").getpixel(corner) == 0
    assert output.getpixel((200, 150)) == (220, 20, 20, 255)


@pytest.mark.parametrize("model", [TITAN_V2, NOVA])
async def test_color_guided_output_uses_the_palette(client: Any, model: str) -> None:
    palette = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728"]
    body = {
        "taskType": "COLOR_GUIDED_GENERATION",
        "colorGuidedGenerationParams": {
            "text": "a still life",
            "colors": palette,
            "referenceImage": to_b64(scene(SIZE)),
        },
        "imageGenerationConfig": GEN,
    }
    output = decode_png((await invoke(client, model, body))["images"][0])
    used = {c for _, c in output.getcolors(1024) or []}
    wanted = {tuple(int(code[i : i + 2], 16) for i in (1, 3, 5)) for code in palette}
    assert used == wanted


def _edges(image: Image.Image) -> Image.Image:
    """Binary edge map; the 2-px frame is blanked (Pillow leaves border pixels unfiltered)."""
    edges = image.convert("L").filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > 48 else 0)
    w, h = edges.size
    return ImageOps.expand(edges.crop((2, 2, w - 2, h - 2)), border=2, fill=0)


def _overlap(reference_edges: Image.Image, output_edges: Image.Image) -> float:
    both = ImageChops.darker(reference_edges, output_edges).histogram()[255]
    return both / max(1, reference_edges.histogram()[255])


@pytest.mark.parametrize("mode", ["CANNY_EDGE", "SEGMENTATION"])
async def test_conditioning_output_follows_reference_edges(client: Any, mode: str) -> None:
    reference = Image.new("RGB", SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(reference)
    draw.rectangle((60, 60, 250, 200), outline=(0, 0, 0), width=4)
    draw.ellipse((280, 240, 470, 470), fill=(0, 0, 0))
    plain = _text_body("a house", 5)
    conditioned = _text_body("a house", 5)
    conditioned["textToImageParams"].update(
        conditionImage=to_b64(reference), controlMode=mode, controlStrength=0.8
    )
    out_plain = decode_png((await invoke(client, TITAN_V2, plain))["images"][0])
    out_cond = decode_png((await invoke(client, TITAN_V2, conditioned))["images"][0])
    ref_edges = _edges(reference)
    chance = _edges(out_cond).histogram()[255] / (SIZE[0] * SIZE[1])
    followed = _overlap(ref_edges, _edges(out_cond))
    assert followed > 0.9
    assert followed > 3 * chance
    assert followed > 2 * _overlap(ref_edges, _edges(out_plain))


async def test_variation_similarity_strength_controls_closeness(client: Any) -> None:
    source = scene(SIZE)

    async def distance(strength: float) -> float:
        body = {
            "taskType": "IMAGE_VARIATION",
            "imageVariationParams": {"images": [to_b64(source)], "similarityStrength": strength},
            "imageGenerationConfig": GEN,
        }
        output = decode_png((await invoke(client, TITAN_V2, body))["images"][0])
        return _mean_diff(output, source, (0, 0, *SIZE))

    assert await distance(0.95) < await distance(0.3)


async def test_jpeg_inputs_are_accepted(client: Any) -> None:
    body = {
        "taskType": "IMAGE_VARIATION",
        "imageVariationParams": {"images": [to_b64(scene(SIZE), "JPEG")] * 2},
        "imageGenerationConfig": GEN,
    }
    result = await invoke(client, NOVA, body)
    assert decode_png(result["images"][0]).size == SIZE
    assert base64.b64decode(result["images"][0])[:4] == b"\x89PNG"
