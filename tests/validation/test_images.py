"""The image probe on its own: formats, modes, transparency and mask colours."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from gateway.domain import InputImage
from gateway.registry import ModelSpec
from gateway.validation.images import check_image, has_translucency, is_black_and_white
from gateway.validation.violations import Context
from tests.validation.support import (
    BLACK,
    NOVA,
    SD35,
    TITAN_V2,
    WHITE,
    encode,
    jpeg,
    make_registry,
    png,
    webp,
)


def _spec(model_id: str) -> ModelSpec:
    spec = make_registry().get(model_id)
    assert spec is not None
    return spec


NOVA_SPEC = _spec(NOVA)
TITAN_SPEC = _spec(TITAN_V2)
SD35_SPEC = _spec(SD35)


def _probe(data: bytes, spec: ModelSpec = NOVA_SPEC, mask: bool = False) -> tuple[Any, list[str]]:
    ctx = Context(spec)
    image = check_image(ctx, "f", data, mask=mask)
    return image, [v.description for v in ctx.out.error().violations]


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        pytest.param(png(400, 320), "PNG", id="png-rgb"),
        pytest.param(png(400, 320, 7, "L"), "PNG", id="png-grey"),
        pytest.param(png(400, 320, 3, "P"), "PNG", id="png-palette"),
        pytest.param(png(400, 320, (1, 2, 3, 255), "RGBA"), "PNG", id="png-opaque-rgba"),
        pytest.param(jpeg(400, 320), "JPEG", id="jpeg"),
        pytest.param(encode(Image.new("L", (400, 320)), "JPEG"), "JPEG", id="jpeg-grey"),
        pytest.param(encode(Image.new("CMYK", (400, 320)), "JPEG"), "JPEG", id="jpeg-cmyk"),
    ],
)
def test_accepted_images(data: bytes, fmt: str) -> None:
    assert _probe(data) == (InputImage(data, fmt, 400, 320), [])


def test_nova_refuses_16_bit_inputs_titan_does_not() -> None:
    data = png(400, 320, 0, "I;16")
    assert _probe(data)[1] == [
        "must have 8 bits per colour channel for amazon.nova-canvas-v1:0 (got I;16)"
    ]
    assert _probe(data, TITAN_SPEC)[1] == []


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        pytest.param((1000, 704), "each side must be divisible by 16", id="not-16"),
        pytest.param((2048, 2048), "width x height must be below 4194304 pixels", id="pixels"),
        pytest.param((1600, 384), "aspect ratio must be between 1:4 and 4:1", id="ratio"),
    ],
)
def test_nova_inputs_follow_its_output_size_rules(size: tuple[int, int], problem: str) -> None:
    _, found = _probe(png(*size))
    assert found == [f"{problem} for amazon.nova-canvas-v1:0 (got {size[0]}x{size[1]})"]


@pytest.mark.parametrize(
    ("img", "translucent"),
    [
        pytest.param(Image.new("RGB", (8, 8)), False, id="rgb"),
        pytest.param(Image.new("RGBA", (8, 8), (0, 0, 0, 255)), False, id="rgba-opaque"),
        pytest.param(Image.new("RGBA", (8, 8), (0, 0, 0, 254)), True, id="rgba-254"),
        pytest.param(Image.new("LA", (8, 8), (0, 0)), True, id="la-clear"),
        pytest.param(Image.new("LA", (8, 8), (0, 255)), False, id="la-opaque"),
    ],
)
def test_has_translucency(img: Image.Image, translucent: bool) -> None:
    assert has_translucency(img) is translucent


def test_palette_transparency_counts_only_when_used() -> None:
    img = Image.new("P", (8, 8), 1)
    img.info["transparency"] = 0
    reloaded = Image.open(BytesIO(encode(img)))
    assert not has_translucency(reloaded)  # index 0 is transparent but unused
    reloaded.putpixel((0, 0), 0)
    assert has_translucency(reloaded)


def _split(mode: str, dark: Any, light: Any) -> Image.Image:
    img = Image.new(mode, (8, 8), light)
    img.paste(dark, (0, 0, 4, 8))
    return img


@pytest.mark.parametrize(
    ("img", "ok"),
    [
        pytest.param(_split("RGB", BLACK, WHITE), True, id="rgb-black-white"),
        pytest.param(Image.new("RGB", (8, 8), WHITE), True, id="all-white"),
        pytest.param(_split("1", 0, 1), True, id="bilevel"),
        pytest.param(_split("L", 0, 255), True, id="grey-0-255"),
        pytest.param(_split("L", 0, 254), False, id="grey-254"),
        pytest.param(_split("RGB", (255, 0, 0), WHITE), False, id="red"),
        pytest.param(_split("RGBA", (0, 0, 0, 255), (255, 255, 255, 255)), True, id="rgba"),
    ],
)
def test_is_black_and_white(img: Image.Image, ok: bool) -> None:
    assert is_black_and_white(img) is ok


def test_jpeg_mask_at_quality_100_is_accepted() -> None:
    mask = _split("L", 0, 255).resize((512, 512), Image.Resampling.NEAREST)
    data = encode(mask, "JPEG", quality=100)
    image, problems = _probe(data, TITAN_SPEC, mask=True)
    assert problems == []
    assert image == InputImage(data, "JPEG", 512, 512)


def test_oversized_image_is_not_decoded() -> None:
    image, problems = _probe(png(4097, 320))
    assert image == InputImage(png(4097, 320), "PNG", 4097, 320)  # size known from the header
    assert problems == [
        "each side must be 320-4096 pixels for amazon.nova-canvas-v1:0 (got 4097x320)"
    ]


@pytest.mark.parametrize(
    "img",
    [
        pytest.param(Image.new("RGB", (400, 320), (1, 2, 3)), id="rgb"),
        pytest.param(Image.new("RGBA", (400, 320), (1, 2, 3, 0)), id="transparent"),
    ],
)
def test_webp_is_accepted_for_stability(img: Image.Image) -> None:
    data = encode(img, "WEBP", lossless=True)
    assert _probe(data, SD35_SPEC) == (InputImage(data, "WEBP", 400, 320), [])


@pytest.mark.parametrize("spec", [TITAN_SPEC, NOVA_SPEC], ids=["titan", "nova"])
def test_webp_is_refused_for_titan_and_nova(spec: ModelSpec) -> None:
    # The WebP parser is not even offered the bytes: the model does not take WebP.
    assert _probe(webp(400, 320), spec) == (
        None,
        [f"must be a PNG or JPEG image (WebP is not accepted by {spec.model_id})"],
    )


def test_stability_takes_what_nova_refuses() -> None:
    data = png(400, 330, 0, "I;16")  # 16-bit, sides not divisible by 16
    assert _probe(data, SD35_SPEC) == (InputImage(data, "PNG", 400, 330), [])


def test_stability_messages_name_its_formats() -> None:
    assert _probe(b"GIF89a", SD35_SPEC)[1] == ["must be a PNG, JPEG or WebP image"]
    assert _probe(b"", SD35_SPEC)[1] == [
        "is required: PNG, JPEG or WebP bytes (got an empty value)"
    ]
