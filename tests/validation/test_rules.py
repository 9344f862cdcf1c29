"""Each rule: a request breaking it gets a violation on the right field, saying why.

Every case breaks exactly one rule, so the test also checks that nothing else
is reported (no noise from one mistake).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from gateway.registry import ModelRegistry
from tests.validation.support import (
    BLACK,
    NOVA,
    TITAN_V1,
    TITAN_V2,
    encode,
    jpeg,
    mask_png,
    noisy_png,
    png,
    png_header,
    request,
    violations,
)
from titan.gateway.v1 import image_service_pb2

Build = Callable[[], image_service_pb2.GenerateImagesRequest]


def t2i(model: str = "", config: dict[str, Any] | None = None, **fields: Any) -> Build:
    return lambda: request(model, config, text_to_image={"text": "a cat", **fields})


def inpaint(model: str = "", config: dict[str, Any] | None = None, **fields: Any) -> Build:
    task = {"image": png(512, 512), "mask_prompt": "the cup", **fields}
    return lambda: request(model, config, inpainting=task)


def outpaint(model: str = "", config: dict[str, Any] | None = None, **fields: Any) -> Build:
    task = {"image": png(512, 512), "mask_prompt": "the cup", "text": "a beach", **fields}
    return lambda: request(model, config, outpainting=task)


def variation(model: str = "", **fields: Any) -> Build:
    return lambda: request(model, image_variation={"images": [png()], **fields})


def colour(model: str = "", **fields: Any) -> Build:
    task = {"text": "a poster", "colors": ["#000000"], **fields}
    return lambda: request(model, color_guided_generation=task)


def bg(image: bytes, model: str = "", config: dict[str, Any] | None = None) -> Build:
    return lambda: request(model, config, background_removal={"image": image})


def cond(**fields: Any) -> dict[str, Any]:
    return {"condition_image": png(), **fields}


def _gif() -> bytes:
    return encode(Image.new("RGB", (512, 512)), "GIF")


def _no_task() -> image_service_pb2.GenerateImagesRequest:
    return image_service_pb2.GenerateImagesRequest(model_id=NOVA)


def _bad_request_id(value: str) -> Build:
    def build() -> image_service_pb2.GenerateImagesRequest:
        req = t2i()()
        req.client_request_id = value
        return req

    return build


def _mask_image() -> Image.Image:
    img = Image.new("RGB", (512, 512), (255, 255, 255))
    img.paste(BLACK, (100, 100, 301, 333))
    return img


def _translucent_pixel() -> Image.Image:
    img = Image.new("RGBA", (512, 512), (5, 5, 5, 255))
    img.putpixel((511, 511), (5, 5, 5, 254))
    return img


def _palette_with_transparency() -> Image.Image:
    img = Image.new("P", (512, 512), 0)
    img.info["transparency"] = 0
    return img


T, N, V1 = TITAN_V2, NOVA, TITAN_V1
MAX_INPUT_BYTES = 5 * 1024 * 1024  # Titan and Nova Canvas
LONG = "x" * 513

CASES = [
    # model and task
    ("unknown-model", lambda: request("nope", text_to_image={"text": "a"}), "model_id",
     ["must be one of", TITAN_V1, NOVA, "'nope'"]),
    ("no-task", _no_task, "task", ["exactly one", "text_to_image"]),
    ("v1-conditioning", t2i(V1, conditioning=cond()), "text_to_image.conditioning",
     ["conditioning", "not supported", V1]),
    # prompt texts
    ("text-missing", t2i(text=""), "text_to_image.text", ["required"]),
    ("text-blank", t2i(text=" \n\t "), "text_to_image.text", ["required", "whitespace"]),
    ("text-too-long-titan", t2i(text="y" * 536), "text_to_image.text",
     ["at most 512 characters", T, "got 536"]),
    ("text-too-long-v1", t2i(V1, text=LONG), "text_to_image.text", ["at most 512", V1]),
    ("text-too-long-nova", t2i(N, text="z" * 1025), "text_to_image.text",
     ["at most 1024 characters", N, "got 1025"]),
    ("negative-too-long", t2i(negative_text=LONG), "text_to_image.negative_text",
     ["at most 512"]),
    ("mask-prompt-too-long", inpaint(mask_prompt=LONG), "inpainting.mask_prompt",
     ["at most 512"]),
    ("mask-prompt-blank", inpaint(mask_prompt="  "), "inpainting.mask_prompt", ["required"]),
    ("inpaint-text-too-long", inpaint(text=LONG), "inpainting.text", ["at most 512"]),
    ("outpaint-text-missing", outpaint(text=""), "outpainting.text", ["required"]),
    ("variation-text-too-long", variation(text=LONG), "image_variation.text", ["at most 512"]),
    ("colour-text-missing", colour(text=""), "color_guided_generation.text", ["required"]),
    ("colour-negative-too-long", colour(negative_text=LONG),
     "color_guided_generation.negative_text", ["at most 512"]),
    # config numbers
    ("count-zero", t2i(config={"number_of_images": 0}), "config.number_of_images",
     ["between 1 and 5", "got 0"]),
    ("count-six", t2i(config={"number_of_images": 6}), "config.number_of_images",
     ["between 1 and 5", "got 6"]),
    ("cfg-low", t2i(config={"cfg_scale": 1.0}), "config.cfg_scale",
     ["between 1.1 and 10.0", "got 1.0"]),
    ("cfg-just-below", t2i(config={"cfg_scale": 1.09}), "config.cfg_scale", ["1.09"]),
    ("cfg-high", t2i(config={"cfg_scale": 10.5}), "config.cfg_scale", ["got 10.5"]),
    ("cfg-nan", t2i(config={"cfg_scale": float("nan")}), "config.cfg_scale", ["got nan"]),
    ("cfg-inf", t2i(config={"cfg_scale": float("-inf")}), "config.cfg_scale", ["got -inf"]),
    ("seed-negative", t2i(config={"seed": -1}), "config.seed",
     ["between 0 and 2147483646", "got -1"]),
    ("seed-too-big", t2i(config={"seed": 2**31 - 1}), "config.seed", ["got 2147483647"]),
    ("seed-plus-count", t2i(config={"seed": 2_147_483_645, "number_of_images": 3}),
     "config.seed", ["at most 2147483644", "3 images", "seed + i"]),
    ("quality-unknown", t2i(config={"quality": 9}), "config.quality",
     ["standard", "premium", "9"]),
    # output size
    ("width-without-height", t2i(config={"width": 512}), "config.height",
     ["required", "config.width"]),
    ("height-without-width", t2i(config={"height": 512}), "config.width",
     ["required", "config.height"]),
    ("titan-odd-size", t2i(config={"width": 1000, "height": 1000}), "config.width",
     ["Titan sizes", "1024x1024", "got 1000x1000"]),
    ("titan-swapped-size", t2i(V1, config={"width": 640, "height": 1173}), "config.width",
     ["Titan sizes", "640x1173"]),
    ("nova-not-16", t2i(N, config={"width": 1000, "height": 1008}), "config.width",
     ["divisible by 16", "1000x1008"]),
    ("nova-too-small", t2i(N, config={"width": 256, "height": 512}), "config.width",
     ["320-4096"]),
    ("nova-aspect", t2i(N, config={"width": 320, "height": 1600}), "config.width",
     ["aspect ratio"]),
    ("nova-too-many-pixels", t2i(N, config={"width": 2048, "height": 2048}), "config.width",
     ["below 4194304"]),
    ("variation-odd-size", lambda: request(
        image_variation={"images": [png()]}, config={"width": 100, "height": 100}),
     "config.width", ["Titan sizes"]),
    ("nova-inpaint-width", inpaint(N, {"width": 512}), "config.width",
     ["must not be set", "inpainting", N, "input image's size"]),
    ("nova-outpaint-height", outpaint(N, {"height": 512}), "config.height",
     ["must not be set", "outpainting"]),
    ("titan-inpaint-other-size", inpaint(T, {"width": 1024, "height": 1024}), "config.width",
     ["must match", "512x512", "1024x1024"]),
    ("bg-removal-count", bg(png(), config={"number_of_images": 2}), "config.number_of_images",
     ["background removal returns one image", "got 2"]),
    # images
    ("image-empty", bg(b""), "background_removal.image", ["required", "empty"]),
    ("image-gif", bg(_gif()), "background_removal.image", ["PNG or JPEG"]),
    ("image-garbage", bg(b"hello, not an image"), "background_removal.image", ["PNG or JPEG"]),
    ("image-truncated", bg(noisy_png()[:-200]), "background_removal.image",
     ["PNG or JPEG", "truncated"]),
    ("image-truncated-jpeg", bg(jpeg()[:300]), "background_removal.image", ["truncated"]),
    ("image-over-5mb", bg(b"\x89PNG\r\n\x1a\n" + bytes(MAX_INPUT_BYTES)),
     "background_removal.image", ["at most 5242880 bytes", "5 MB"]),
    ("image-bomb", bg(png_header(100_000, 100_000)), "background_removal.image",
     ["too many pixels"]),
    ("image-bomb-warning", bg(png_header(10_000, 10_000)), "background_removal.image",
     ["too many pixels"]),
    ("image-header-only-nova", bg(png_header(2048, 1024), N), "background_removal.image",
     ["truncated"]),
    ("image-too-wide-titan", bg(png(1500, 512)), "background_removal.image",
     ["each side must be 64-1408 pixels", T, "got 1500x512"]),
    ("image-too-small-titan", bg(png(512, 32)), "background_removal.image",
     ["64-1408", "512x32"]),
    ("image-too-small-nova", bg(png(512, 300), N), "background_removal.image",
     ["320-4096", N, "512x300"]),
    ("nova-transparent", bg(png(512, 512, (1, 2, 3, 0), "RGBA"), N), "background_removal.image",
     ["transparent or translucent", N]),
    ("nova-translucent-one-pixel", bg(encode(_translucent_pixel()), N),
     "background_removal.image", ["translucent"]),
    ("nova-palette-transparency", bg(encode(_palette_with_transparency()), N),
     "background_removal.image", ["transparent"]),
    ("nova-la-translucent", bg(png(512, 512, (0, 128), "LA"), N), "background_removal.image",
     ["translucent"]),
    ("condition-image-bad", t2i(conditioning=cond(condition_image=b"nope")),
     "text_to_image.conditioning.condition_image", ["PNG or JPEG"]),
    ("condition-image-missing", t2i(conditioning={"control_strength": 0.5}),
     "text_to_image.conditioning.condition_image", ["required", "conditioning"]),
    ("reference-image-bad", colour(reference_image=png(2000, 512)),
     "color_guided_generation.reference_image", ["64-1408"]),
    ("outpaint-image-empty", outpaint(image=b""), "outpainting.image", ["required"]),
    # masks
    ("mask-missing", lambda: request(inpainting={"image": png()}), "inpainting.mask",
     ["exactly one", "mask_prompt", "mask_image"]),
    ("outpaint-mask-missing", lambda: request(outpainting={"image": png(), "text": "a"}),
     "outpainting.mask", ["exactly one"]),
    ("mask-image-empty", inpaint(mask_image=b""), "inpainting.mask_image", ["required"]),
    ("mask-size", inpaint(mask_image=mask_png(256, 256)), "inpainting.mask_image",
     ["same size as inpainting.image (512x512)", "got 256x256"]),
    ("mask-grey", inpaint(mask_image=mask_png(other=(128, 128, 128))), "inpainting.mask_image",
     ["pure black", "pure white"]),
    ("mask-near-black", outpaint(mask_image=mask_png(other=(0, 0, 1))),
     "outpainting.mask_image", ["pure black"]),
    ("mask-lossy-jpeg", inpaint(mask_image=encode(_mask_image(), "JPEG", quality=50)),
     "inpainting.mask_image", ["pure black", "quality 100"]),
    ("mask-not-image", inpaint(mask_image=b"\x00" * 10), "inpainting.mask_image",
     ["PNG or JPEG"]),
    # conditioning, strengths and modes
    ("control-strength-high", t2i(conditioning=cond(control_strength=1.5)),
     "text_to_image.conditioning.control_strength", ["between 0.0 and 1.0", "got 1.5"]),
    ("control-strength-nan", t2i(conditioning=cond(control_strength=float("nan"))),
     "text_to_image.conditioning.control_strength", ["nan"]),
    ("control-mode-unknown", t2i(conditioning=cond(control_mode=7)),
     "text_to_image.conditioning.control_mode", ["CANNY_EDGE", "SEGMENTATION", "7"]),
    ("outpaint-mode-unknown", outpaint(mode=3), "outpainting.mode", ["PRECISE", "3"]),
    ("similarity-low", variation(similarity_strength=0.1),
     "image_variation.similarity_strength", ["between 0.2 and 1.0", "got 0.1"]),
    ("similarity-high", variation(similarity_strength=1.01),
     "image_variation.similarity_strength", ["got 1.01"]),
    # image variation inputs
    ("variation-no-images", variation(images=[]), "image_variation.images",
     ["1-5 images", "got 0"]),
    ("variation-six-images", variation(images=[png()] * 6), "image_variation.images",
     ["1-5 images", "got 6"]),
    ("variation-bad-third", variation(images=[png(), jpeg(), b"GIF89a", png()]),
     "image_variation.images[2]", ["PNG or JPEG"]),
    # colours
    ("colours-none", colour(colors=[]), "color_guided_generation.colors",
     ["1-10 colours", "got 0"]),
    ("colours-eleven", colour(colors=["#000000"] * 11), "color_guided_generation.colors",
     ["1-10", "got 11"]),
    ("colour-name", colour(colors=["#000000", "red"]), "color_guided_generation.colors[1]",
     ["hex colour like #1A2B3C", "got 'red'"]),
    ("colour-short", colour(colors=["#12345"]), "color_guided_generation.colors[0]",
     ["'#12345'"]),
    ("colour-no-hash", colour(colors=["123456"]), "color_guided_generation.colors[0]",
     ["#1A2B3C"]),
    ("colour-not-hex", colour(colors=["#GGGGGG"]), "color_guided_generation.colors[0]",
     ["#1A2B3C"]),
    ("colour-newline", colour(colors=["#123456\n"]), "color_guided_generation.colors[0]",
     ["#1A2B3C"]),
    # client request id
    ("request-id-too-long", _bad_request_id("r" * 129), "client_request_id",
     ["at most 128 characters", "got 129"]),
    ("request-id-control-char", _bad_request_id("abc\n"), "client_request_id",
     ["printable"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "field", "words"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_rule(registry: ModelRegistry, build: Build, field: str, words: list[str]) -> None:
    found = violations(build(), registry)
    assert {v.field for v in found} == {field}, found
    description = " / ".join(v.description for v in found)
    for word in words:
        assert word in description, f"{word!r} not in {description!r}"
