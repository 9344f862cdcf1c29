"""Small images made in-test, and readers for what comes back."""

from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageDraw


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(BytesIO(data))
    img.load()
    return img


def photo(width: int = 512, height: int = 512) -> Image.Image:
    """A busy RGB test card: gradient plus shapes, so edits are visible."""
    img = Image.new("RGB", (width, height))
    px = img.load()
    assert px is not None
    for y in range(height):
        for x in range(width):
            px[x, y] = (x * 255 // width, y * 255 // height, 128)
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(250, 240, 20))
    return img


def disc_on_white(size: int = 512) -> Image.Image:
    """A red disc on a white background (for background removal)."""
    img = Image.new("RGB", (size, size), (255, 255, 255))
    r = size // 4
    ImageDraw.Draw(img).ellipse(
        (size // 2 - r, size // 2 - r, size // 2 + r, size // 2 + r), fill=(200, 20, 20)
    )
    return img


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """White canvas with a black box: black marks the mask region."""
    mask = Image.new("RGB", size, (255, 255, 255))
    ImageDraw.Draw(mask).rectangle(box, fill=(0, 0, 0))
    return mask


def outline(size: int = 512) -> Image.Image:
    """A thick black rectangle outline on white: strong, known edges."""
    img = Image.new("RGB", (size, size), (255, 255, 255))
    m = size // 5
    ImageDraw.Draw(img).rectangle((m, m, size - m, size - m), outline=(0, 0, 0), width=12)
    return img
