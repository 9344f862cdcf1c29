"""Builders for the validation tests: small images made with Pillow, and requests."""

from __future__ import annotations

import random
import struct
import zlib
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from gateway.errors import FieldViolation, InvalidRequest
from gateway.models import ModelFamily, ModelRegistry, ModelSpec
from gateway.validation import decode_request
from titan.gateway.v1 import image_service_pb2, tasks_pb2

TITAN_V2 = "amazon.titan-image-generator-v2:0"
TITAN_V1 = "amazon.titan-image-generator-v1"
NOVA = "amazon.nova-canvas-v1:0"

BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def make_registry() -> ModelRegistry:
    return ModelRegistry(
        [
            ModelSpec(TITAN_V2, ModelFamily.TITAN_V2),
            ModelSpec(TITAN_V1, ModelFamily.TITAN_V1),
            ModelSpec(NOVA, ModelFamily.NOVA_CANVAS),
        ],
        TITAN_V2,
    )


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
