"""The config per model: aspect ratios, sizes of input-based tasks, seeds,
cfg scale, quality and output format; and the request-body size."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain import OutputFormat
from gateway.registry import MAX_IMAGES, ModelRegistry
from gateway.validation import decode_request
from tests.validation.support import (
    CONSERVATIVE,
    ERASE,
    FAST_UPSCALE,
    INPAINT,
    NOVA,
    OUTPAINT,
    REMOVE_BG,
    SD35,
    SEARCH_REPLACE,
    SKETCH,
    STYLE_GUIDE,
    TITAN_V2,
    ULTRA,
    Build,
    check_rule,
    mask_png,
    padded,
    png,
    request,
)
from titan.gateway.v1 import tasks_pb2

LADDER = {
    "1:1": (1024, 1024), "16:9": (1344, 768), "9:16": (768, 1344), "21:9": (1536, 640),
    "9:21": (640, 1536), "3:2": (1216, 832), "2:3": (832, 1216), "4:5": (896, 1088),
    "5:4": (1088, 896),
}  # fmt: skip
JPEG_, WEBP_ = tasks_pb2.OUTPUT_FORMAT_JPEG, tasks_pb2.OUTPUT_FORMAT_WEBP
PREMIUM = tasks_pb2.QUALITY_PREMIUM


def t2i(model: str = SD35, config: dict[str, Any] | None = None) -> Build:
    return lambda: request(model, config, text_to_image={"text": "a cat"})


def _size(registry: ModelRegistry, build: Build) -> tuple[int, int, str | None]:
    config = decode_request(build(), registry).config
    return config.width, config.height, config.aspect_ratio


@pytest.mark.parametrize(("ratio", "size"), LADDER.items())
def test_aspect_ratio_gives_the_table_size(
    registry: ModelRegistry, ratio: str, size: tuple[int, int]
) -> None:
    assert _size(registry, t2i(config={"aspect_ratio": ratio})) == (*size, ratio)


@pytest.mark.parametrize(("ratio", "size"), LADDER.items())
def test_table_size_is_translated_to_its_ratio(
    registry: ModelRegistry, ratio: str, size: tuple[int, int]
) -> None:
    width, height = size
    assert _size(registry, t2i(ULTRA, {"width": width, "height": height})) == (*size, ratio)
    both = {"width": width, "height": height, "aspect_ratio": ratio}
    assert _size(registry, t2i(config=both)) == (*size, ratio)  # agreeing is fine


def test_aspect_ratio_defaults_to_square_and_is_not_sent_as_a_size(
    registry: ModelRegistry,
) -> None:
    config = decode_request(t2i()(), registry).config
    assert (config.width, config.height, config.aspect_ratio) == (1024, 1024, "1:1")
    assert config.send_size is False


def test_style_guide_takes_an_aspect_ratio(registry: ModelRegistry) -> None:
    build = lambda: request(  # noqa: E731
        STYLE_GUIDE, {"width": 640, "height": 1536}, style_guide={"image": png(), "text": "a"}
    )
    assert _size(registry, build) == (640, 1536, "9:21")


@pytest.mark.parametrize(
    ("model", "fmt", "expected"),
    [
        pytest.param(SD35, JPEG_, OutputFormat.JPEG, id="sd35-jpeg"),
        pytest.param(SD35, WEBP_, OutputFormat.WEBP, id="sd35-webp"),
        pytest.param(ULTRA, JPEG_, OutputFormat.JPEG, id="ultra-jpeg"),
        pytest.param(SD35, 0, OutputFormat.PNG, id="sd35-default-png"),
        pytest.param(TITAN_V2, tasks_pb2.OUTPUT_FORMAT_PNG, OutputFormat.PNG, id="titan-png"),
    ],
)
def test_output_format(
    registry: ModelRegistry, model: str, fmt: int, expected: OutputFormat
) -> None:
    job = decode_request(t2i(model, {"output_format": fmt})(), registry)
    assert job.config.output_format is expected


@pytest.mark.parametrize(("model", "top"), [(SD35, 4_294_967_294), (ULTRA, 4_294_967_295)])
def test_highest_stability_seeds(registry: ModelRegistry, model: str, top: int) -> None:
    config = {"seed": top - MAX_IMAGES + 1, "number_of_images": MAX_IMAGES}
    job = decode_request(t2i(model, config)(), registry)
    assert job.seed_for(MAX_IMAGES - 1) == top


def test_seed_zero_is_kept_when_given(registry: ModelRegistry) -> None:
    assert decode_request(t2i(config={"seed": 0})(), registry).config.seed == 0


RANDOM_SEED_BUILDS: dict[str, Build] = {
    SD35: lambda: request(SD35, {"number_of_images": MAX_IMAGES}, text_to_image={"text": "a"}),
    ERASE: lambda: request(ERASE, {"number_of_images": MAX_IMAGES}, erase_object={"image": png()}),
    REMOVE_BG: lambda: request(REMOVE_BG, background_removal={"image": png()}),
}


@pytest.mark.parametrize("model", RANDOM_SEED_BUILDS)
def test_random_default_seed_stays_in_range(registry: ModelRegistry, model: str) -> None:
    seeds = set()
    for _ in range(40):
        job = decode_request(RANDOM_SEED_BUILDS[model](), registry)
        top = job.model.limits.seed_max
        assert 1 <= job.config.seed <= top - MAX_IMAGES
        assert job.seed_for(job.config.count - 1) <= top
        seeds.add(job.config.seed)
    assert len(seeds) > 1  # random, not a fixed default


def test_stability_background_removal_ignores_config(registry: ModelRegistry) -> None:
    config = {"quality": PREMIUM, "cfg_scale": 3.0, "width": 1, "height": 1, "aspect_ratio": "x"}
    req = request(REMOVE_BG, config, background_removal={"image": png(300, 200)})
    job = decode_request(req, registry)
    assert (job.config.width, job.config.height, job.config.count) == (300, 200, 1)
    assert (job.config.cfg_scale, job.config.send_size) == (None, False)


def test_titan_and_nova_keep_their_config_defaults(registry: ModelRegistry) -> None:
    for model, cfg_scale, seed in ((TITAN_V2, 8.0, 42), (NOVA, 6.5, 12)):
        config = decode_request(t2i(model)(), registry).config
        assert (config.cfg_scale, config.seed, config.aspect_ratio) == (cfg_scale, seed, None)
        assert config.output_format is OutputFormat.PNG


def test_image_that_fits_the_request_body(registry: ModelRegistry) -> None:
    image = padded(png(), 18_000_000)  # 24,000,000 bytes base64-encoded
    req = request(SD35, image_to_image={"image": image, "text": "a"})
    assert decode_request(req, registry).task is not None


def on(model: str, config: dict[str, Any], **task: Any) -> Build:
    return lambda: request(model, config, **task)


IMG = png(600, 400)
ERASING = {"erase_object": {"image": IMG}}
I2I = {"image_to_image": {"image": IMG, "text": "a"}}
T2I = {"text_to_image": {"text": "a cat"}}

CASES = [
    # aspect ratios
    ("ratio-unknown", t2i(config={"aspect_ratio": "7:3"}), "config.aspect_ratio",
     ["must be one of 1:1, 16:9", "5:4", SD35, "'7:3'"]),
    ("ratio-size-not-in-table", t2i(config={"width": 1024, "height": 768}), "config.width",
     ["sizes of " + SD35, "1344x768 (16:9)", "or give config.aspect_ratio", "got 1024x768"]),
    ("ratio-size-half", t2i(config={"width": 1344}), "config.height",
     ["required when config.width"]),
    ("ratio-disagrees", t2i(config={"width": 1344, "height": 768, "aspect_ratio": "1:1"}),
     "config.aspect_ratio", ["must agree", "1344x768 is 16:9", "'1:1'"]),
    ("ratio-on-titan", t2i(TITAN_V2, {"aspect_ratio": "1:1"}), "config.aspect_ratio",
     ["not supported by " + TITAN_V2, "give width and height"]),
    ("ratio-on-nova", t2i(NOVA, {"aspect_ratio": "16:9"}), "config.aspect_ratio",
     ["give width and height"]),
    ("ratio-on-titan-inpainting", on(TITAN_V2, {"aspect_ratio": "1:1"}, inpainting={
        "image": png(), "mask_prompt": "a"}), "config.aspect_ratio",
     ["must not be set for inpainting", "follows the input image"]),
    # sizes of tasks that follow the input
    ("erase-width", on(ERASE, {"width": 600}, **ERASING), "config.width",
     ["must not be set for erase_object on " + ERASE, "the output follows the input image",
      "input image's size"]),
    ("search-height", on(SEARCH_REPLACE, {"height": 400}, search_and_replace={
        "image": IMG, "search_prompt": "a", "text": "b"}), "config.height",
     ["must not be set for search_and_replace", "follows the input image"]),
    ("inpaint-ratio", on(INPAINT, {"aspect_ratio": "3:2"}, inpainting={
        "image": IMG, "text": "a"}), "config.aspect_ratio", ["must not be set for inpainting"]),
    ("sketch-width", on(SKETCH, {"width": 600}, text_to_image={"text": "a", "conditioning": {
        "condition_image": IMG, "control_mode": tasks_pb2.CONTROL_MODE_SKETCH}}),
     "config.width", ["must not be set for text_to_image on " + SKETCH]),
    ("fast-upscale-ratio", on(FAST_UPSCALE, {"aspect_ratio": "1:1"}, fast_upscale={
        "image": IMG}), "config.aspect_ratio", ["follows the input image (4x each side)"]),
    ("conservative-width", on(CONSERVATIVE, {"width": 2048}, conservative_upscale={
        "image": IMG, "text": "a"}), "config.width", ["about 4 megapixels"]),
    ("expand-height", on(OUTPAINT, {"height": 500}, expand_canvas={"image": IMG, "up": 100}),
     "config.height", ["plus the added sides"]),
    ("i2i-ratio", on(SD35, {"aspect_ratio": "16:9"}, **I2I), "config.aspect_ratio",
     ["must not be set for image_to_image", "closest to the input's"]),
    ("i2i-width", on(SD35, {"width": 1344}, **I2I), "config.width",
     ["must not be set for image_to_image"]),
    # quality, cfg scale, output format
    ("premium-sd35", t2i(config={"quality": PREMIUM}), "config.quality",
     ["premium is not offered by " + SD35, "it has: standard"]),
    ("premium-erase", on(ERASE, {"quality": PREMIUM}, **ERASING), "config.quality",
     ["premium is not offered by " + ERASE]),
    ("quality-unknown-sd35", t2i(config={"quality": 7}), "config.quality",
     ["unknown value 7"]),
    ("cfg-sd35", t2i(config={"cfg_scale": 7.0}), "config.cfg_scale",
     ["is not supported by " + SD35, "got 7.0"]),
    ("cfg-erase", on(ERASE, {"cfg_scale": 1.1}, **ERASING), "config.cfg_scale",
     ["not supported by " + ERASE]),
    ("webp-on-ultra", t2i(ULTRA, {"output_format": WEBP_}), "config.output_format",
     ["webp is not offered by " + ULTRA, "it has: png, jpeg"]),
    ("jpeg-on-titan", t2i(TITAN_V2, {"output_format": JPEG_}), "config.output_format",
     ["jpeg is not offered by " + TITAN_V2, "it has: png"]),
    ("webp-on-nova", t2i(NOVA, {"output_format": WEBP_}), "config.output_format", ["webp"]),
    ("format-unknown", t2i(config={"output_format": 9}), "config.output_format",
     ["png, jpeg, webp", "unknown value 9"]),
    # seeds and counts on Stability
    ("seed-sd35-too-big", t2i(config={"seed": 4_294_967_295}), "config.seed",
     ["between 0 and 4294967294", "got 4294967295"]),
    ("seed-ultra-too-big", t2i(ULTRA, {"seed": 4_294_967_296}), "config.seed",
     ["between 0 and 4294967295"]),
    ("seed-plus-count", t2i(config={"seed": 4_294_967_293, "number_of_images": 3}),
     "config.seed", ["at most 4294967292 for 3 images", "seed + i"]),
    ("count-sd35", t2i(config={"number_of_images": 6}), "config.number_of_images",
     ["between 1 and 5"]),
    ("bg-count-stability", on(REMOVE_BG, {"number_of_images": 2}, background_removal={
        "image": IMG}), "config.number_of_images", ["background removal returns one image"]),
    # bytes: per image, and all of them in the request body
    ("stability-over-25mb", on(SD35, {}, image_to_image={
        "image": padded(png(), 25_000_001), "text": "a"}), "image_to_image.image",
     ["at most 25000000 bytes (25 MB)", "got 25000001"]),
    ("body-one-image", on(SD35, {}, image_to_image={
        "image": padded(png(), 19_000_000), "text": "a"}), "image_to_image.image",
     ["19000000 bytes", "base64", "25000000-byte request body"]),
    ("body-titan-variation", on(TITAN_V2, {}, image_variation={
        "images": [padded(png(), 4_000_000)] * 5}), "image_variation",
     ["20000000 bytes in all", "base64"]),
    ("body-mask-and-image", on(INPAINT, {}, inpainting={
        "image": padded(png(), 10_000_000), "mask_image": padded(mask_png(), 9_000_000),
        "text": "a"}), "inpainting", ["19000000 bytes in all"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "field", "words"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_config_rule(registry: ModelRegistry, build: Build, field: str, words: list[str]) -> None:
    check_rule(registry, build, field, words)
