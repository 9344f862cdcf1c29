"""What a copy of a delivered image goes through, one function each.

Each takes and returns a PIL image; encoders really run (into memory), so the
figures include the codecs' rounding, chroma subsampling and block artefacts.
`TRANSFORMS` is the list the robustness test and `bench/watermarks.py`
measure, under the row names the README's table uses.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

Transform = Callable[[Image.Image], Image.Image]


def jpeg_75(image: Image.Image) -> Image.Image:
    """JPEG at quality 75 (4:2:0); transparency is flattened onto white first."""
    return _reencode(_flatten(image), "JPEG", quality=75)


def webp_80(image: Image.Image) -> Image.Image:
    """Lossy WebP at quality 80, what the gateway delivers for output_format webp."""
    return _reencode(image, "WEBP", quality=80)


def resize_half(image: Image.Image) -> Image.Image:
    """Downscaled to 50 % with Pillow's default (bicubic, antialiased)."""
    width, height = image.size
    return image.resize((max(1, width // 2), max(1, height // 2)))


def crop_centre(image: Image.Image) -> Image.Image:
    """10 % of the width and of the height cropped away, 5 % off each side."""
    width, height = image.size
    dx, dy = round(width * 0.05), round(height * 0.05)
    return image.crop((dx, dy, width - dx, height - dy))


def crop_corner(image: Image.Image) -> Image.Image:
    """10 % of the width and of the height cropped away, all off the left and top."""
    width, height = image.size
    return image.crop((round(width * 0.1), round(height * 0.1), width, height))


def png_reencode(image: Image.Image) -> Image.Image:
    """Decoded and saved again as PNG (default compression)."""
    return _reencode(image, "PNG")


def strip_metadata(image: Image.Image) -> Image.Image:
    """Only the pixels survive: a new image from the raw bytes, saved without metadata."""
    bare = Image.frombytes(image.mode, image.size, image.tobytes())
    return _reencode(bare, "PNG")


TRANSFORMS: tuple[tuple[str, Transform], ...] = (
    ("JPEG quality 75", jpeg_75),
    ("Resize to 50 %", resize_half),
    ("Crop 10 %, centred", crop_centre),
    ("Crop 10 %, left and top", crop_corner),
    ("PNG re-encode", png_reencode),
    ("Metadata stripped", strip_metadata),
    ("WebP quality 80", webp_80),
)


def _reencode(image: Image.Image, fmt: str, **options: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    buf.seek(0)
    with Image.open(buf) as decoded:
        decoded.load()
        return decoded.copy()


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image.convert("RGB")
    canvas = Image.new("RGB", image.size, (255, 255, 255))
    canvas.paste(image, mask=image.getchannel("A"))
    return canvas
