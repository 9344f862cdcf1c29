"""The input-image probe: decode untrusted image bytes once and check them.

Only the Pillow parsers of the formats the model accepts ever see the bytes
(`formats=`: PNG and JPEG, plus WebP for models that take it), the header
size is checked before any pixel is decoded (so a small file that expands to
gigapixels is refused cheaply), and every Pillow failure becomes a violation.
"""

from __future__ import annotations

from io import BytesIO

from PIL import Image, UnidentifiedImageError

from gateway.domain import InputImage
from gateway.registry import NOVA_MAX_SIDE, InputRules, nova_size_problem
from gateway.validation.violations import Context

# Pillow's parser names per accepted format, in the order they are tried.
_PARSERS = {"PNG": ("PNG",), "JPEG": ("JPEG",), "WEBP": ("WEBP",)}
# JPEGs with a multi-picture index (phone cameras) open as "MPO"; they are JPEGs.
_FORMAT_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WEBP"}
_SHOWN_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}
# No model accepts a larger input; this bounds decoding whatever the limits say.
MAX_DECODE_PIXELS = NOVA_MAX_SIDE * NOVA_MAX_SIDE
_BLACK_WHITE = frozenset({(0, 0, 0), (255, 255, 255)})
_MIB = 1024 * 1024
_LOSSY_HINTS = {"JPEG": " (save JPEG masks at quality 100)", "WEBP": " (save WebP masks lossless)"}


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
    image = _open(ctx, field, data, mask)
    if image is not None:
        ctx.inputs.append((field, len(data)))
    return image


def check_mask(
    ctx: Context, field: str, data: bytes, image: InputImage | None, image_field: str
) -> InputImage | None:
    """A mask: pure black and white, the same size as the image it masks."""
    found = check_image(ctx, field, data, mask=True)
    if found is not None and image is not None and _size(found) != _size(image):
        ctx.add(
            field,
            f"must be the same size as {image_field} ({_size(image)}), got {_size(found)}",
        )
    return found


def formats_text(ctx: Context) -> str:
    """The model's input formats for messages: "PNG or JPEG", "PNG, JPEG or WebP"."""
    names = [_SHOWN_NAMES[f] for f in _PARSERS if f in ctx.limits.input.formats]
    return " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"


def _not_an_image(ctx: Context) -> str:
    return f"must be a {formats_text(ctx)} image"


def _check_bytes(ctx: Context, field: str, data: bytes) -> bool:
    if not data:
        ctx.add(field, f"is required: {formats_text(ctx)} bytes (got an empty value)")
        return False
    limit = ctx.limits.input.max_bytes
    if len(data) > limit:
        ctx.add(
            field, f"must be at most {limit} bytes ({_megabytes(limit)}) (got {len(data)} bytes)"
        )
        return False
    return True


def _megabytes(limit: int) -> str:
    return f"{limit // _MIB} MB" if limit % _MIB == 0 else f"{limit / 1_000_000:g} MB"


def _open(ctx: Context, field: str, data: bytes, mask: bool) -> InputImage | None:
    allowed = ctx.limits.input.formats
    parsers = tuple(p for fmt, names in _PARSERS.items() if fmt in allowed for p in names)
    try:
        with Image.open(BytesIO(data), formats=parsers) as img:
            return _inspect(ctx, field, data, img, mask)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        ctx.add(field, f"has too many pixels to decode (at most {MAX_DECODE_PIXELS})")
    except UnidentifiedImageError:
        ctx.add(field, _not_an_image(ctx) + _webp_hint(ctx, data))
    except Exception:  # Pillow raises many types on malformed data: all mean "bad image"
        ctx.add(field, f"{_not_an_image(ctx)}; it could not be decoded (corrupt or truncated)")
    return None


def _webp_hint(ctx: Context, data: bytes) -> str:
    # A look at the RIFF header only: the WebP parser never sees these bytes.
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return f" (WebP is not accepted by {ctx.model_id})"
    return ""


def _inspect(
    ctx: Context, field: str, data: bytes, img: Image.Image, mask: bool
) -> InputImage | None:
    fmt = _FORMAT_NAMES.get(img.format or "")
    if fmt is None or fmt not in ctx.limits.input.formats:
        ctx.add(field, _not_an_image(ctx))
        return None
    width, height = img.size
    if not _check_sides(ctx, field, width, height):
        return InputImage(data, fmt, width, height)  # too big or small: not decoded
    img.load()  # decode errors (e.g. truncated data) propagate to _open
    rules = ctx.limits.input
    if rules.nova_rules and img.mode not in _EIGHT_BIT_MODES:
        ctx.add(field, f"must have 8 bits per colour channel for {ctx.model_id} (got {img.mode})")
    if rules.opaque_only and has_translucency(img):
        ctx.add(field, f"must not have transparent or translucent pixels for {ctx.model_id}")
    if mask and not is_black_and_white(img):
        hint = _LOSSY_HINTS.get(fmt, "")
        ctx.add(field, f"must contain only pure black and pure white pixels{hint}")
    return InputImage(data, fmt, width, height)


def _check_sides(ctx: Context, field: str, width: int, height: int) -> bool:
    rules = ctx.limits.input
    problem = (
        _side_problem(rules, width, height)
        or (nova_size_problem(width, height) if rules.nova_rules else None)
        or _pixel_problem(rules, width, height)
        or _aspect_problem(rules, width, height)
    )
    if problem:
        ctx.add(field, f"{problem} for {ctx.model_id} (got {width}x{height})")
        return False
    if width * height > MAX_DECODE_PIXELS:
        ctx.add(field, f"has too many pixels to decode ({width}x{height})")
        return False
    return True


def _side_problem(rules: InputRules, width: int, height: int) -> str | None:
    low, high = rules.min_side, rules.max_side
    if min(width, height) >= low and (high is None or max(width, height) <= high):
        return None
    if high is None:
        return f"each side must be at least {low} pixels"
    return f"each side must be {low}-{high} pixels"


def _pixel_problem(rules: InputRules, width: int, height: int) -> str | None:
    low, high, pixels = rules.min_pixels, rules.max_pixels, width * height
    if (low is None or pixels >= low) and (high is None or pixels <= high):
        return None
    if low is not None and high is not None:
        wanted = f"{low}-{high}"
    else:
        wanted = f"at least {low}" if high is None else f"at most {high}"
    return f"width x height must be {wanted} pixels ({pixels} given)"


def _aspect_problem(rules: InputRules, width: int, height: int) -> str | None:
    ratio = rules.max_aspect
    if ratio is None or max(width, height) <= ratio * min(width, height):
        return None
    return f"aspect ratio must be between 1:{ratio:g} and {ratio:g}:1"


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


def _size(image: InputImage) -> str:
    return f"{image.width}x{image.height}"
