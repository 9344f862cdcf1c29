"""The Stability dialect: 3 text-to-image models and 13 Image Services over the real client."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import pytest
from emulator_helpers import TITAN_V2, invoke, invoke_error, scene, to_b64
from PIL import Image, ImageChops, ImageDraw

from gateway.emulator import Emulator, EmulatorConfig
from gateway.emulator.models import (
    CREATIVE_UPSCALE_LIMITS,
    FAST_UPSCALE_LIMITS,
    STANDARD_LIMITS,
    StabilityService,
    StabilitySpec,
    resolve_model,
)

ULTRA = "stability.stable-image-ultra-v1:1"
CORE = "stability.stable-image-core-v1:1"
SD35 = "stability.sd3-5-large-v1:0"
REMOVE_BG = "stability.stable-image-remove-background-v1:0"
ERASE = "stability.stable-image-erase-object-v1:0"
INPAINT = "stability.stable-image-inpaint-v1:0"
SEARCH_REPLACE = "stability.stable-image-search-replace-v1:0"
SEARCH_RECOLOR = "stability.stable-image-search-recolor-v1:0"
SKETCH = "stability.stable-image-control-sketch-v1:0"
STRUCTURE = "stability.stable-image-control-structure-v1:0"
STYLE_GUIDE = "stability.stable-image-style-guide-v1:0"
STYLE_TRANSFER = "stability.stable-style-transfer-v1:0"
OUTPAINT = "stability.stable-outpaint-v1:0"
FAST_UPSCALE = "stability.stable-fast-upscale-v1:0"
CONSERVATIVE = "stability.stable-conservative-upscale-v1:0"
CREATIVE = "stability.stable-creative-upscale-v1:0"

SIZE = (128, 96)
SCENE_IMAGE = scene(SIZE)
SCENE = to_b64(SCENE_IMAGE)
STYLE = to_b64(Image.new("RGB", (96, 96), (20, 60, 200)))
BOX = (40, 30, 79, 59)  # the white (repaint) part of MASK, inclusive
MASK_IMAGE = Image.new("L", SIZE, 0)
ImageDraw.Draw(MASK_IMAGE).rectangle(BOX, fill=255)
MASK = to_b64(MASK_IMAGE)
SUFFIX = ", please reformat your input and try again."
FOUR_MP = 4_194_304


def _subject() -> str:
    """A dark ellipse on a flat light background, for background removal."""
    image = Image.new("RGB", SIZE, (235, 235, 235))
    ImageDraw.Draw(image).ellipse((32, 16, 96, 80), fill=(30, 20, 120))
    return to_b64(image)


def _png(size: tuple[int, int], mode: str = "RGB") -> str:
    return to_b64(Image.new(mode, size, (90, 120, 150)))


def _decode(data: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


UPSCALED = (0, 0)  # about 4 MP at the input's aspect ratio

# model id -> (a valid body, output size, output format)
VALID: dict[str, tuple[dict[str, Any], tuple[int, int], str]] = {
    ULTRA: ({"prompt": "a lighthouse", "seed": 11}, (1024, 1024), "PNG"),
    CORE: ({"prompt": "a lighthouse", "aspect_ratio": "16:9", "output_format": "jpeg"},
           (1344, 768), "JPEG"),
    SD35: ({"prompt": "a lighthouse", "mode": "image-to-image", "image": SCENE, "strength": 0.6,
            "output_format": "webp"}, (1216, 832), "WEBP"),
    REMOVE_BG: ({"image": _subject()}, SIZE, "PNG"),
    ERASE: ({"image": SCENE, "mask": MASK, "output_format": "webp"}, SIZE, "WEBP"),
    INPAINT: ({"image": SCENE, "mask": MASK, "prompt": "a hat", "style_preset": "anime"},
              SIZE, "PNG"),
    SEARCH_REPLACE: ({"image": SCENE, "prompt": "a dog", "search_prompt": "the cat",
                      "grow_mask": 3}, SIZE, "PNG"),
    SEARCH_RECOLOR: ({"image": to_b64(SCENE_IMAGE, "JPEG"), "prompt": "pink jacket",
                      "select_prompt": "jacket", "output_format": "jpeg"}, SIZE, "JPEG"),
    SKETCH: ({"image": SCENE, "prompt": "a house", "control_strength": 0.5}, SIZE, "PNG"),
    STRUCTURE: ({"image": to_b64(SCENE_IMAGE, "WEBP"), "prompt": "a tunnel",
                 "negative_prompt": "blur"}, SIZE, "PNG"),
    STYLE_GUIDE: ({"image": SCENE, "prompt": "a city", "aspect_ratio": "9:21", "fidelity": 0.8},
                  (640, 1536), "PNG"),
    STYLE_TRANSFER: ({"init_image": SCENE, "style_image": STYLE, "composition_fidelity": 0.5,
                      "style_strength": 0.8, "change_strength": 0.1}, SIZE, "PNG"),
    OUTPAINT: ({"image": SCENE, "left": 16, "right": 8, "up": 4, "creativity": 0.1},
               (152, 100), "PNG"),
    FAST_UPSCALE: ({"image": SCENE, "output_format": "jpeg"}, (512, 384), "JPEG"),
    CONSERVATIVE: ({"image": SCENE, "prompt": "a castle", "creativity": 0.1}, UPSCALED, "PNG"),
    CREATIVE: ({"image": SCENE, "prompt": "a castle", "creativity": 0.5,
                "style_preset": "photographic"}, UPSCALED, "PNG"),
}  # fmt: skip


def _assert_success(payload: dict[str, Any], seed: int | None = None) -> Image.Image:
    assert set(payload) == {"seeds", "finish_reasons", "images"}
    assert payload["finish_reasons"] == [None]
    assert len(payload["seeds"]) == 1
    assert isinstance(payload["seeds"][0], int)
    assert 0 < payload["seeds"][0] <= 4_294_967_295
    if seed is not None:
        assert payload["seeds"] == [seed]
    assert len(payload["images"]) == 1
    return _decode(payload["images"][0])


@pytest.mark.parametrize("profile", [False, True], ids=["bare", "us"])
@pytest.mark.parametrize("model_id", list(VALID))
async def test_every_model_answers_one_image_of_the_documented_size(
    client: Any, model_id: str, profile: bool
) -> None:
    body, size, fmt = VALID[model_id]
    payload = await invoke(client, f"us.{model_id}" if profile else model_id, body)
    image = _assert_success(payload, body.get("seed"))
    assert image.format == fmt
    if size == UPSCALED:
        assert abs(image.width * image.height - FOUR_MP) < 0.001 * FOUR_MP
        assert image.width / image.height == pytest.approx(SIZE[0] / SIZE[1], rel=0.005)
    else:
        assert image.size == size
    if model_id == REMOVE_BG:
        assert image.mode == "RGBA"
        alpha = image.getchannel("A")
        assert alpha.getpixel((0, 0)) == 0  # background gone
        assert alpha.getpixel((64, 48)) == 255  # subject kept


@pytest.mark.parametrize(
    "model_id",
    [
        f"arn:aws:bedrock:us-east-1::foundation-model/{INPAINT}",
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{INPAINT}",
        f"us.{INPAINT}",
    ],
    ids=["foundation-model-arn", "inference-profile-arn", "profile-id"],
)
async def test_arns_and_profile_ids_resolve(client: Any, model_id: str) -> None:
    _assert_success(await invoke(client, model_id, VALID[INPAINT][0]))


@pytest.mark.parametrize(
    "model_id",
    [
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{INPAINT}",  # not a profile id
        f"eu.{INPAINT}",
        f"us.{TITAN_V2}",  # Titan and Nova keep answering their bare ids only
        "stability.stable-image-ultra-v1:0",  # deprecated, not served
    ],
)
async def test_unknown_ids_are_resource_not_found(client: Any, model_id: str) -> None:
    await invoke_error(client, model_id, VALID[INPAINT][0], "ResourceNotFoundException")


def test_resolve_model_maps_each_id_to_its_service() -> None:
    services = set()
    for model_id in VALID:
        spec = resolve_model(model_id)
        assert isinstance(spec, StabilitySpec)
        assert resolve_model(f"us.{model_id}") is spec
        services.add(spec.service)
    assert services == set(StabilityService)


# ------------------------------------------------------------- validation

TALL = _png((64, 161))
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("unknown field", INPAINT, {**VALID[INPAINT][0], "foo": 1},
     "#: extraneous key [foo] is not permitted"),
    ("count field", CORE, {"prompt": "a", "samples": 2},
     "#: extraneous key [samples] is not permitted"),
    ("core image", CORE, {"prompt": "a", "image": SCENE},
     "#: extraneous key [image] is not permitted"),
    ("remove bg seed", REMOVE_BG, {"image": SCENE, "seed": 3},
     "#: extraneous key [seed] is not permitted"),
    ("outpaint negative", OUTPAINT, {"image": SCENE, "left": 5, "negative_prompt": "x"},
     "#: extraneous key [negative_prompt] is not permitted"),
    ("transfer preset", STYLE_TRANSFER,
     {"init_image": SCENE, "style_image": STYLE, "style_preset": "anime"},
     "#: extraneous key [style_preset] is not permitted"),
    ("missing prompt", INPAINT, {"image": SCENE}, "#: required key [prompt] not found"),
    ("missing image", ERASE, {"mask": MASK}, "#: required key [image] not found"),
    ("missing search", SEARCH_REPLACE, {"image": SCENE, "prompt": "a"},
     "#: required key [search_prompt] not found"),
    ("missing select", SEARCH_RECOLOR, {"image": SCENE, "prompt": "a"},
     "#: required key [select_prompt] not found"),
    ("missing style image", STYLE_TRANSFER, {"init_image": SCENE},
     "#: required key [style_image] not found"),
    ("missing upscale prompt", CONSERVATIVE, {"image": SCENE},
     "#: required key [prompt] not found"),
    ("sd35 seed", SD35, {"prompt": "a", "seed": 4_294_967_295},
     "#/seed: 4294967295 is not less or equal to 4294967294"),
    ("ultra seed", ULTRA, {"prompt": "a", "seed": 4_294_967_296},
     "#/seed: 4294967296 is not less or equal to 4294967295"),
    ("negative seed", SEARCH_REPLACE, {**VALID[SEARCH_REPLACE][0], "seed": -1},
     "#/seed: -1 is not greater or equal to 0"),
    ("grow mask", INPAINT, {**VALID[INPAINT][0], "grow_mask": 21},
     "#/grow_mask: 21 is not less or equal to 20"),
    ("control strength", SKETCH, {"image": SCENE, "prompt": "a", "control_strength": 1.5},
     "#/control_strength: 1.5 is not less or equal to 1"),
    ("change strength", STYLE_TRANSFER,
     {"init_image": SCENE, "style_image": STYLE, "change_strength": 0.05},
     "#/change_strength: 0.05 is not greater or equal to 0.1"),
    ("fidelity", STYLE_GUIDE, {"image": SCENE, "prompt": "a", "fidelity": -0.1},
     "#/fidelity: -0.1 is not greater or equal to 0"),
    ("conservative creativity", CONSERVATIVE, {"image": SCENE, "prompt": "a", "creativity": 0.6},
     "#/creativity: 0.6 is not less or equal to 0.5"),
    ("creative creativity", CREATIVE, {"image": SCENE, "prompt": "a", "creativity": 0.05},
     "#/creativity: 0.05 is not greater or equal to 0.1"),
    ("outpaint creativity", OUTPAINT, {"image": SCENE, "up": 4, "creativity": 1.5},
     "#/creativity: 1.5 is not less or equal to 1"),
    ("outpaint side", OUTPAINT, {"image": SCENE, "left": 2001},
     "#/left: 2001 is not less or equal to 2000"),
    ("sd35 strength", SD35, {"prompt": "a", "image": SCENE, "strength": 1.01},
     "#/strength: 1.01 is not less or equal to 1"),
    ("prompt length", CORE, {"prompt": "x" * 10_001},
     "#/prompt: expected maxLength: 10000, actual: 10001"),
    ("negative length", ULTRA, {"prompt": "a", "negative_prompt": "x" * 10_001},
     "#/negative_prompt: expected maxLength: 10000, actual: 10001"),
    ("seed type", CORE, {"prompt": "a", "seed": "5"},
     "#/seed: expected type: Integer, found: String"),
    ("seed float", INPAINT, {**VALID[INPAINT][0], "seed": 1.5},
     "#/seed: expected type: Integer, found: BigDecimal"),
    ("strength type", ULTRA, {"prompt": "a", "image": SCENE, "strength": "high"},
     "#/strength: expected type: Number, found: String"),
    ("prompt type", SD35, {"prompt": 5}, "#/prompt: expected type: String, found: Integer"),
    ("image type", REMOVE_BG, {"image": None}, "#/image: expected type: String, found: Null"),
    ("output format", INPAINT, {**VALID[INPAINT][0], "output_format": "gif"},
     "#/output_format: gif is not a valid enum value"),
    ("ultra webp", ULTRA, {"prompt": "a", "output_format": "webp"},
     "#/output_format: webp is not a valid enum value"),
    ("aspect ratio", CORE, {"prompt": "a", "aspect_ratio": "4:3"},
     "#/aspect_ratio: 4:3 is not a valid enum value"),
    ("style preset", CREATIVE, {"image": SCENE, "prompt": "a", "style_preset": "watercolor"},
     "#/style_preset: watercolor is not a valid enum value"),
    ("sd35 mode", SD35, {"prompt": "a", "mode": "inpaint"},
     "#/mode: inpaint is not a valid enum value"),
    ("core mode", CORE, {"prompt": "a", "mode": "image-to-image"},
     "#/mode: image-to-image is not a valid enum value"),
    ("sd35 i2i without image", SD35, {"prompt": "a", "mode": "image-to-image", "strength": 0.5},
     "#: required key [image] not found when mode is image-to-image"),
    ("sd35 i2i without strength", SD35, {"prompt": "a", "image": SCENE},
     "#: required key [strength] not found when mode is image-to-image"),
    ("sd35 t2i with image", SD35,
     {"prompt": "a", "mode": "text-to-image", "image": SCENE, "strength": 0.5},
     "#: extraneous key [image] is not permitted when mode is text-to-image"),
    ("sd35 t2i with strength", SD35, {"prompt": "a", "strength": 0.5},
     "#: extraneous key [strength] is not permitted when mode is text-to-image"),
    ("sd35 i2i aspect", SD35, {"prompt": "a", "image": SCENE, "strength": 0.5,
                               "aspect_ratio": "1:1"},
     "#: extraneous key [aspect_ratio] is not permitted when mode is image-to-image"),
    ("ultra i2i without image", ULTRA, {"prompt": "a", "mode": "image-to-image"},
     "#: required key [image] not found when mode is image-to-image"),
    ("ultra t2i with image", ULTRA, {"prompt": "a", "mode": "text-to-image", "image": SCENE},
     "#: extraneous key [image] is not permitted when mode is text-to-image"),
    ("ultra strength alone", ULTRA, {"prompt": "a", "strength": 0.5},
     "#: extraneous key [strength] is not permitted when mode is text-to-image"),
    ("outpaint nowhere", OUTPAINT, {"image": SCENE, "left": 0, "prompt": "a"},
     "#: at least one of [left, right, up, down] must be greater than 0"),
    ("side too small", INPAINT, {"image": _png((63, 128)), "prompt": "a"},
     "#/image: image dimensions 63x128 are not supported, every side must be at least 64"),
    ("ratio", ERASE, {"image": TALL}, "#/image: image dimensions 64x161 are not supported, "
     "aspect ratio must be between 1:2.5 and 2.5:1"),
    ("too many pixels", REMOVE_BG, {"image": _png((3073, 3072))},
     "#/image: image dimensions 3073x3072 are not supported, total pixel count cannot exceed "
     "9437184"),
    ("init image", STYLE_TRANSFER, {"init_image": TALL, "style_image": STYLE},
     "#/init_image: image dimensions 64x161 are not supported"),
    ("style image", STYLE_TRANSFER, {"init_image": SCENE, "style_image": _png((40, 40))},
     "#/style_image: image dimensions 40x40 are not supported"),
    ("i2i image", SD35, {"prompt": "a", "image": _png((50, 50)), "strength": 0.5},
     "#/image: image dimensions 50x50 are not supported"),
    ("fast upscale side", FAST_UPSCALE, {"image": _png((1537, 64))},
     "#/image: image dimensions 1537x64 are not supported, every side must be at most 1536"),
    ("fast upscale small", FAST_UPSCALE, {"image": _png((31, 64))},
     "#/image: image dimensions 31x64 are not supported, every side must be at least 32"),
    ("fast upscale pixels", FAST_UPSCALE, {"image": _png((1025, 1024))},
     "#/image: image dimensions 1025x1024 are not supported, total pixel count must be between "
     "1024 and 1048576"),
    ("creative upscale pixels", CREATIVE, {"image": _png((1025, 1024)), "prompt": "a"},
     "#/image: image dimensions 1025x1024 are not supported, total pixel count must be between "
     "4096 and 1048576"),
    ("not base64", INPAINT, {"image": "%%%", "prompt": "a"},
     "#/image: image data is not valid base64"),
    ("gif", REMOVE_BG, {"image": to_b64(Image.new("RGB", (64, 64)), "GIF")},
     "#/image: unable to decode image, it must be a base64-encoded JPEG, PNG or WebP image"),
    ("bad mask", ERASE, {"image": SCENE, "mask": base64.b64encode(b"nope").decode()},
     "#/mask: unable to decode image"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model_id", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_rule_violation_is_validation_exception(
    client: Any, model_id: str, body: dict[str, Any], expected: str
) -> None:
    message = await invoke_error(client, f"us.{model_id}", body, "ValidationException")
    assert message.startswith(f"Malformed input request: {expected}")
    assert message.endswith(SUFFIX)


async def test_documented_edges_are_accepted(client: Any) -> None:
    ultra = await invoke(client, ULTRA, {"prompt": "", "seed": 4_294_967_295})
    assert _assert_success(ultra, 4_294_967_295).size == (1024, 1024)
    wide = {"image": _png((160, 64)), "grow_mask": 0}  # exactly 2.5:1, no mask
    assert _assert_success(await invoke(client, ERASE, wide)).size == (160, 64)
    tiny = await invoke(client, FAST_UPSCALE, {"image": _png((32, 32))})
    assert _assert_success(tiny).size == (128, 128)
    # AWS's own SD3.5 image-to-image example sends no mode; Ultra's strength is optional.
    sd35 = {"prompt": "a", "image": _png((64, 160)), "strength": 0.0}
    assert _assert_success(await invoke(client, SD35, sd35)).size == (640, 1536)
    ultra_i2i = {"prompt": "a", "image": SCENE, "aspect_ratio": "1:1", "mode": "image-to-image"}
    assert _assert_success(await invoke(client, ULTRA, ultra_i2i)).size == (1216, 832)


def test_image_limits_boundaries() -> None:
    assert STANDARD_LIMITS.problem(64, 160) is None
    assert STANDARD_LIMITS.problem(3072, 3072) is None
    assert STANDARD_LIMITS.problem(3073, 3072) is not None
    assert STANDARD_LIMITS.problem(64, 161) is not None
    assert FAST_UPSCALE_LIMITS.problem(1536, 682) is None
    assert FAST_UPSCALE_LIMITS.problem(32, 32) is None
    assert FAST_UPSCALE_LIMITS.problem(1024, 1024) is None
    assert CREATIVE_UPSCALE_LIMITS.problem(1024, 64) is None  # no ratio rule
    assert CREATIVE_UPSCALE_LIMITS.problem(64, 63) is not None


# -------------------------------------------------------------- rendering


def _changed(before: Image.Image, after: Image.Image) -> Image.Image:
    """L image, 255 where any channel differs."""
    diff = ImageChops.difference(before.convert("RGB"), after.convert("RGB")).convert("L")
    return diff.point(lambda v: 255 if v else 0)


def _outside(box: tuple[int, int, int, int], margin: int) -> Image.Image:
    """L mask of SIZE: 255 farther than `margin` px from `box`."""
    keep = Image.new("L", SIZE, 255)
    x0, y0, x1, y1 = box
    ImageDraw.Draw(keep).rectangle((x0 - margin, y0 - margin, x1 + margin, y1 + margin), fill=0)
    return keep


def _count(mask: Image.Image) -> int:
    """Non-zero pixels of an L image."""
    return sum(mask.histogram()[1:])


@pytest.mark.parametrize("model_id", [INPAINT, ERASE])
@pytest.mark.parametrize("grow", [0, 5, 20])
async def test_mask_black_keeps_white_repaints(client: Any, model_id: str, grow: int) -> None:
    body = {"image": SCENE, "mask": MASK, "grow_mask": grow, "prompt": "a hat"}
    if model_id == ERASE:
        del body["prompt"]
    image = _assert_success(await invoke(client, model_id, body))
    changed = _changed(SCENE_IMAGE, image)
    assert _count(ImageChops.multiply(changed, _outside(BOX, grow))) == 0
    inside = changed.crop((BOX[0], BOX[1], BOX[2] + 1, BOX[3] + 1))
    assert _count(inside) > 0.8 * inside.width * inside.height


async def test_without_mask_the_transparent_pixels_are_repainted(client: Any) -> None:
    rgba = SCENE_IMAGE.convert("RGBA")
    rgba.paste((0, 0, 0, 0), BOX)  # paste fills BOX's [x0, x1) range
    body = {"image": to_b64(rgba), "prompt": "a hat", "grow_mask": 0}
    image = _assert_success(await invoke(client, INPAINT, body))
    changed = _changed(rgba, image)
    assert _count(ImageChops.multiply(changed, _outside(BOX, 1))) == 0
    assert _count(changed) > 0.8 * (BOX[2] - BOX[0]) * (BOX[3] - BOX[1])
    # An explicit (all black) mask wins over the alpha channel: nothing changes.
    black = to_b64(Image.new("L", (32, 24), 0))  # and a mask of another size is resized
    kept = _assert_success(await invoke(client, INPAINT, {**body, "mask": black}))
    assert _count(_changed(rgba, kept)) == 0


async def test_outpaint_keeps_the_input_where_it_was_placed(client: Any) -> None:
    image = _assert_success(await invoke(client, OUTPAINT, VALID[OUTPAINT][0]))
    placed = image.crop((16, 4, 16 + SIZE[0], 4 + SIZE[1]))
    assert _count(_changed(SCENE_IMAGE, placed)) == 0


async def test_style_strength_zero_returns_the_input(client: Any) -> None:
    body = {"init_image": SCENE, "style_image": STYLE, "style_strength": 0}
    image = _assert_success(await invoke(client, STYLE_TRANSFER, body))
    assert _count(_changed(SCENE_IMAGE, image)) == 0


async def test_same_prompt_and_seed_give_the_same_image(client: Any) -> None:
    body = {"image": SCENE, "prompt": "a dog", "search_prompt": "the disc", "seed": 77}
    first = await invoke(client, SEARCH_REPLACE, body)
    again = await invoke(client, f"us.{SEARCH_REPLACE}", body)
    assert first == again
    other_seed = await invoke(client, SEARCH_REPLACE, {**body, "seed": 78})
    other_prompt = await invoke(client, SEARCH_REPLACE, {**body, "prompt": "a cat"})
    assert other_seed["images"] != first["images"]
    assert other_prompt["images"] != first["images"]


async def test_seed_zero_reports_a_seed_that_reproduces_the_image(client: Any) -> None:
    body: dict[str, Any] = {"prompt": "a kite", "aspect_ratio": "21:9", "seed": 0}
    first = await invoke(client, CORE, body)
    seed = first["seeds"][0]
    assert seed > 0
    assert await invoke(client, CORE, {"prompt": "a kite", "aspect_ratio": "21:9"}) == first
    replay = await invoke(client, CORE, {**body, "seed": seed})
    assert replay == first


# -------------------------------------------------------- finish reasons

FILTERS = EmulatorConfig(
    input_block_terms=("forbidden",),
    input_image_block_terms=("inputimageterm",),
    output_block_terms=("outputimageterm",),
    inference_error_terms=("inferenceerrorterm",),
)


async def test_every_finish_reason_in_its_documented_shape(client: Any, emulator: Emulator) -> None:
    emulator.config = FILTERS
    prompt = await invoke(client, CORE, {"prompt": "a FORBIDDEN castle", "seed": 7})
    assert prompt == {"finish_reasons": ["Filter reason: prompt"]}
    search = {"prompt": "a", "search_prompt": "forbidden thing", "image": SCENE}
    assert await invoke(client, SEARCH_REPLACE, search) == prompt
    edit = {"image": SCENE, "prompt": "an inputimageterm hat"}
    input_image = await invoke(client, INPAINT, edit)
    assert input_image == {"finish_reasons": ["Filter reason: input image"]}
    output = await invoke(client, CORE, {"prompt": "an outputimageterm", "seed": 7})
    assert output == {"seeds": [7], "finish_reasons": ["Filter reason: output image"], "images": []}
    error = await invoke(client, CORE, {"prompt": "an inferenceerrorterm", "seed": 7})
    assert error == {"seeds": [7], "finish_reasons": ["Inference error"], "images": []}
    # The input-image term needs an input image; without one the call succeeds.
    _assert_success(await invoke(client, CORE, {"prompt": "inputimageterm", "seed": 7}), 7)
    assert emulator.stats.images_returned == 1
    assert emulator.stats.status_counts == {200: 6}


async def test_titan_keeps_its_own_filter_shapes(client: Any, emulator: Emulator) -> None:
    emulator.config = FILTERS
    body = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a forbidden castle"}}
    message = await invoke_error(client, TITAN_V2, body, "ValidationException")
    assert "blocked by our content filters" in message
    body["textToImageParams"]["text"] = "inferenceerrorterm inputimageterm"
    assert len((await invoke(client, TITAN_V2, body))["images"]) == 1


# -------------------------------------------------------------- policies


async def test_throttling_counts_one_image_per_call(client: Any, emulator: Emulator) -> None:
    emulator.config = EmulatorConfig(images_per_minute=2)
    await invoke(client, REMOVE_BG, {"image": SCENE})
    await invoke(client, FAST_UPSCALE, {"image": SCENE})
    message = await invoke_error(client, ERASE, {"image": SCENE}, "ThrottlingException")
    assert message == "Too many requests, please wait before trying again."


async def test_fault_seeds_and_latency_apply(client: Any, emulator: Emulator) -> None:
    emulator.config = EmulatorConfig(fault_seeds=frozenset({13}), seed_latency_ms={14: 300})
    body = {"image": SCENE, "prompt": "a", "seed": 13}
    await invoke_error(client, SKETCH, body, "InternalServerException")
    started = time.monotonic()
    await invoke(client, SKETCH, {**body, "seed": 14})
    assert time.monotonic() - started >= 0.3
    emulator.config = EmulatorConfig(latency_ms=200)
    started = time.monotonic()
    await invoke(client, SKETCH, {**body, "seed": 15})
    assert time.monotonic() - started >= 0.2


async def test_stats_record_bodies_with_images_elided(client: Any, emulator: Emulator) -> None:
    body = {"init_image": SCENE, "style_image": STYLE, "prompt": "statue"}
    await invoke(client, f"us.{STYLE_TRANSFER}", body)
    await invoke(client, ERASE, {"image": SCENE, "mask": MASK})
    (first_id, first), (second_id, second) = emulator.stats.received
    assert first_id == STYLE_TRANSFER
    assert first == {
        "init_image": f"<image: {len(SCENE)} base64 chars>",
        "style_image": f"<image: {len(STYLE)} base64 chars>",
        "prompt": "statue",
    }
    assert second_id == ERASE
    assert second["mask"] == f"<image: {len(MASK)} base64 chars>"
    assert emulator.stats.images_returned == 2
