"""The input-image probe: decode untrusted PNG/JPEG bytes once and check them.

Only Pillow's PNG and JPEG parsers ever see the bytes (`formats=`), the header
size is checked before any pixel is decoded (so a small file that expands to
gigapixels is refused cheaply), and every Pillow failure becomes a violation.
"""

from __future__ import annotations

from io import BytesIO

from PIL import Image, UnidentifiedImageError

from gateway.domain import InputImage
from gateway.models import MAX_INPUT_BYTES, NOVA_MAX_SIDE, nova_size_problem
from gateway.validation.violations import Context

_FORMATS = ("PNG", "JPEG")
# JPEGs with a multi-picture index (phone cameras) open as "MPO"; they are JPEGs.
_FORMAT_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG"}
# No family accepts a larger input; this bounds decoding whatever the limits say.
MAX_DECODE_PIXELS = NOVA_MAX_SIDE * NOVA_MAX_SIDE
_BLACK_WHITE = frozenset({(0, 0, 0), (255, 255, 255)})
_NOT_AN_IMAGE = "must be a PNG or JPEG image"


def check_image(ctx: Context, field: str, data: bytes, *, mask: bool = False) -> InputImage | None:
    """Decode and check one input image; None if it cannot be decoded at all.

    The InputImage is returned even when a limit is broken (the violation is
    recorded), so callers can still compare sizes and report those problems too.
    """
    if not _check_bytes(ctx, field, data):
        return None
    # No warnings.catch_warnings() here: it swaps process-wide filters and is
    # not thread-safe, and the gateway decodes in worker threads. Pillow's
    # bomb *warning* band (89-179 MP) is rejected anyway by the side and
    # pixel checks below, before anything is decoded.
    return _open(ctx, field, data, mask)


def _check_bytes(ctx: Context, field: str, data: bytes) -> bool:
    if not data:
        ctx.add(field, "is required: PNG or JPEG bytes (got an empty value)")
        return False
    if len(data) > MAX_INPUT_BYTES:
        ctx.add(field, f"must be at most {MAX_INPUT_BYTES} bytes (5 MB) (got {len(data)} bytes)")
        return False
    return True


def _open(ctx: Context, field: str, data: bytes, mask: bool) -> InputImage | None:
    try:
        with Image.open(BytesIO(data), formats=_FORMATS) as img:
            return _inspect(ctx, field, data, img, mask)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        ctx.add(field, f"has too many pixels to decode (at most {MAX_DECODE_PIXELS})")
    except UnidentifiedImageError:
        ctx.add(field, _NOT_AN_IMAGE)
    except Exception:  # Pillow raises many types on malformed data: all mean "bad image"
        ctx.add(field, f"{_NOT_AN_IMAGE}; it could not be decoded (corrupt or truncated)")
    return None


def _inspect(
    ctx: Context, field: str, data: bytes, img: Image.Image, mask: bool
) -> InputImage | None:
    fmt = _FORMAT_NAMES.get(img.format or "")
    if fmt is None:
        ctx.add(field, _NOT_AN_IMAGE)
        return None
    width, height = img.size
    if not _check_sides(ctx, field, width, height):
        return InputImage(data, fmt, width, height)  # too big or small: not decoded
    img.load()  # decode errors (e.g. truncated data) propagate to _open
    if ctx.limits.nova_input_rules and img.mode not in _EIGHT_BIT_MODES:
        ctx.add(field, f"must have 8 bits per colour channel for {ctx.model_id} (got {img.mode})")
    if ctx.limits.opaque_inputs_only and has_translucency(img):
        ctx.add(field, f"must not have transparent or translucent pixels for {ctx.model_id}")
    if mask and not is_black_and_white(img):
        hint = " (save JPEG masks at quality 100)" if fmt == "JPEG" else ""
        ctx.add(field, f"must contain only pure black and pure white pixels{hint}")
    return InputImage(data, fmt, width, height)


def _check_sides(ctx: Context, field: str, width: int, height: int) -> bool:
    low, high = ctx.limits.min_input_side, ctx.limits.max_input_side
    if not (low <= width <= high and low <= height <= high):
        size = f"{width}x{height}"
        ctx.add(field, f"each side must be {low}-{high} pixels for {ctx.model_id} (got {size})")
        return False
    problem = nova_size_problem(width, height) if ctx.limits.nova_input_rules else None
    if problem:
        ctx.add(field, f"{problem} for {ctx.model_id} (got {width}x{height})")
        return False
    if width * height > MAX_DECODE_PIXELS:
        ctx.add(field, f"has too many pixels to decode ({width}x{height})")
        return False
    return True


# Pillow modes with 8 bits per channel (P and L expand to 8-bit RGB).
_EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"})


def has_translucency(img: Image.Image) -> bool:
    """Whether any pixel has alpha below 255 (transparent or translucent)."""
    if not img.has_transparency_data:
        return False
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    return any(rgba.getchannel("A").histogram()[:255])


def is_black_and_white(img: Image.Image) -> bool:
    """Whether every pixel is pure black (0,0,0) or pure white (255,255,255)."""
    found = img.convert("RGB").getcolors(maxcolors=2)  # None if more than two colours
    return found is not None and all(color in _BLACK_WHITE for _, color in found)
