"""Decoding and checking the base64 images a request carries.

Bedrock rejects undecodable, oversized, wrongly sized or (for Nova)
translucent inputs with a ValidationException; the emulator must too, or a
gateway tested against it would pass requests Bedrock refuses.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from gateway.emulator.errors import malformed
from gateway.emulator.models import MAX_INPUT_IMAGE_BYTES, nova_size_problem

_FORMATS = ("PNG", "JPEG")
_EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
_PURE = {(0, 0, 0), (255, 255, 255)}


@dataclass(frozen=True)
class ImageRules:
    """The family-specific limits on input images."""

    max_side: int | None
    nova: bool


def decode_image(data: str, path: str, rules: ImageRules) -> Image.Image:
    """Decode one base64 PNG/JPEG field and enforce the family's image rules."""
    raw = _b64decode(data, path)
    if len(raw) > MAX_INPUT_IMAGE_BYTES:
        raise malformed(
            path, f"image size {len(raw)} bytes exceeds the maximum of {MAX_INPUT_IMAGE_BYTES}"
        )
    image = _open(raw, path)
    _check_dimensions(image, path, rules)
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise malformed(path, f"unable to decode image data ({exc})") from exc
    if rules.nova:
        _check_nova_pixels(image, path)
    return image


def _b64decode(data: str, path: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise malformed(path, "image data is not valid base64") from exc


def _open(raw: bytes, path: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(raw), formats=_FORMATS)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise malformed(
            path, "unable to decode image, it must be a base64-encoded PNG or JPEG image"
        ) from exc
    return image


def _check_dimensions(image: Image.Image, path: str, rules: ImageRules) -> None:
    width, height = image.size
    if rules.max_side is not None and max(width, height) > rules.max_side:
        raise malformed(
            path,
            f"image dimensions {width}x{height} exceed the maximum of {rules.max_side} "
            "pixels on the longer side",
        )
    if rules.nova:
        problem = nova_size_problem(width, height)
        if problem is not None:
            raise malformed(path, f"image dimensions {width}x{height} are not supported, {problem}")


def _check_nova_pixels(image: Image.Image, path: str) -> None:
    """Nova wants 8-bit channels and no transparent or translucent pixels."""
    if image.mode not in _EIGHT_BIT_MODES:
        raise malformed(path, "images must have 8 bits per colour channel")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        low = image.convert("RGBA").getchannel("A").getextrema()[0]
        if not isinstance(low, tuple) and low < 255:
            raise malformed(path, "image must not contain transparent or translucent pixels")


def mask_region(mask: Image.Image, image_size: tuple[int, int], path: str) -> Image.Image:
    """Check a mask image and return it as L with 255 where the mask is black.

    Bedrock masks are pure black (0,0,0) and white (255,255,255) only and must
    match the edited image's size; black marks the masked region.
    """
    if mask.size != image_size:
        raise malformed(
            path,
            f"mask size {mask.width}x{mask.height} does not match "
            f"image size {image_size[0]}x{image_size[1]}",
        )
    rgb = mask.convert("RGB")
    colors = rgb.getcolors(maxcolors=2)
    found = {c for _, c in colors or [] if isinstance(c, tuple)}
    if colors is None or len(found) != len(colors) or not found <= _PURE:
        raise malformed(path, "mask image must contain only pure black and pure white pixels")
    return ImageOps.invert(rgb.convert("L"))
