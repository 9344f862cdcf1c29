"""Builders for the validation tests: small images made with Pillow, and requests."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from gateway.domain import InputImage
from gateway.errors import FieldViolation, InvalidRequest
from gateway.registry import ModelRegistry, load_registry
from gateway.validation import decode_request
from titan.gateway.v1 import image_service_pb2, tasks_pb2

Build = Callable[[], image_service_pb2.GenerateImagesRequest]

TITAN_V2 = "amazon.titan-image-generator-v2:0"
TITAN_V1 = "amazon.titan-image-generator-v1"
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"
ULTRA = "stability.stable-image-ultra-v1:1"
CORE = "stability.stable-image-core-v1:1"
INPAINT = "stability.stable-image-inpaint-v1:0"
ERASE = "stability.stable-image-erase-object-v1:0"
REMOVE_BG = "stability.stable-image-remove-background-v1:0"
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

BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def make_registry() -> ModelRegistry:
    """The shipped registry, with Titan v2 the default of every task it can run
    (the Stability defaults stay for the rest)."""
    return load_registry(default_model_id=TITAN_V2)


def encode(img: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buf = BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def png(
    width: int = 512, height: int = 512, color: Any = (40, 80, 120), mode: str = "RGB"
) -> bytes:
    return encode(Image.new(mode, (width, height), color))


def jpeg(
    width: int = 512, height: int = 512, color: Any = (40, 80, 120), quality: int = 90
) -> bytes:
    return encode(Image.new("RGB", (width, height), color), "JPEG", quality=quality)


def webp(width: int = 512, height: int = 512, color: Any = (40, 80, 120)) -> bytes:
    return encode(Image.new("RGB", (width, height), color), "WEBP", lossless=True)


def noisy_png(width: int = 64, height: int = 64) -> bytes:
    """A PNG that does not compress away, so cutting it really truncates pixel data."""
    pixels = random.Random(0).randbytes(width * height * 3)
    return encode(Image.frombytes("RGB", (width, height), pixels))


def mask_png(width: int = 512, height: int = 512, other: Any = None) -> bytes:
    """Left half black, right half white; `other` paints one extra pixel."""
    img = Image.new("RGB", (width, height), WHITE)
    img.paste(BLACK, (0, 0, width // 2, height))
    if other is not None:
        img.putpixel((0, 0), other)
    return encode(img)


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def request(
    model: str = "", config: dict[str, Any] | None = None, **task: Any
) -> image_service_pb2.GenerateImagesRequest:
    """A request with one task given as keyword, e.g. text_to_image={"text": "a cat"}."""
    return image_service_pb2.GenerateImagesRequest(
        model_id=model, config=tasks_pb2.ImageGenerationConfig(**(config or {})), **task
    )


def violations(
    req: image_service_pb2.GenerateImagesRequest, registry: ModelRegistry
) -> list[FieldViolation]:
    """The violations decode_request reports; fails if it accepts the request."""
    with pytest.raises(InvalidRequest) as caught:
        decode_request(req, registry)
    found = list(caught.value.violations)
    assert found, "InvalidRequest without violations"
    return found


def check_rule(registry: ModelRegistry, build: Build, field: str, words: list[str]) -> None:
    """The request breaks exactly one rule: every violation is on `field`, and
    the descriptions together contain each of `words`."""
    found = violations(build(), registry)
    assert {v.field for v in found} == {field}, found
    description = " / ".join(v.description for v in found)
    for word in words:
        assert word in description, f"{word!r} not in {description!r}"


def padded(data: bytes, size: int) -> bytes:
    """`data` (a PNG) followed by zero bytes up to `size` bytes: Pillow stops
    at IEND, so it still decodes, but it is `size` bytes long."""
    return data + bytes(size - len(data))


def input_image(data: bytes, fmt: str = "PNG") -> InputImage:
    """The InputImage the probe makes of `data`."""
    with Image.open(BytesIO(data)) as img:
        width, height = img.size
    return InputImage(data, fmt, width, height)
