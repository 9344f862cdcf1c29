"""Deterministic placeholder output for the Stability models and Image Services.

Like ``render.py``, the pictures are not art but each service does measurably
what its name says: generation has the size its aspect_ratio names; edits keep
the input's size, and Inpaint/Erase change only the pixels the (Stability,
white = repaint) mask selects, plus the ``grow_mask`` ring around them;
Outpaint keeps the input byte-identical inside the larger canvas; upscales
have the documented size; Remove Background answers RGBA with a transparent
background. Everything derives from sha256 of the prompt and seed, so one
request gives the same bytes in every run.

Rendering is CPU work; callers run ``render_stability`` in a thread.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

from PIL import Image, ImageChops, ImageFilter, ImageOps

from gateway.emulator.models import STABILITY_ASPECT_SIZES, StabilityService
from gateway.emulator.render import generate, prompt_mask, seeded_rng, transparent_background
from gateway.emulator.stability import StabilityRequest

S = StabilityService
Size = tuple[int, int]
UPSCALE_TARGET_PIXELS = 4_194_304  # Conservative/Creative Upscale: "to 4K", about 4 MP
FAST_UPSCALE_FACTOR = 4
_JPEG_BACKGROUND = (255, 255, 255)  # what a transparent pixel becomes in a JPEG


def render_stability(req: StabilityRequest) -> bytes:
    """The one output image of a validated Stability request, encoded as asked."""
    image = _RENDERERS[req.service](req)
    return encode(image, req.output_format)


def encode(image: Image.Image, output_format: str) -> bytes:
    """PNG (lossless, keeps alpha), JPEG (alpha flattened onto white) or WebP."""
    buf = io.BytesIO()
    if output_format == "jpeg":
        _flatten(image).save(buf, "JPEG", quality=90)
    elif output_format == "webp":
        image.save(buf, "WEBP", quality=80, method=0)
    else:
        image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image.convert("RGB")
    canvas = Image.new("RGB", image.size, _JPEG_BACKGROUND)
    canvas.paste(image, mask=image.getchannel("A"))
    return canvas


# ------------------------------------------------------------------ sizes


def closest_ladder_size(size: Size) -> Size:
    """The aspect_ratio ladder size whose ratio is closest to `size`'s (image-to-image)."""
    ratio = math.log(size[0] / size[1])
    return min(STABILITY_ASPECT_SIZES.values(), key=lambda s: abs(math.log(s[0] / s[1]) - ratio))


def upscale_size(size: Size, target: int = UPSCALE_TARGET_PIXELS) -> Size:
    """About `target` pixels at `size`'s aspect ratio."""
    scale = math.sqrt(target / (size[0] * size[1]))
    return (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))


def outpaint_size(req: StabilityRequest) -> Size:
    assert req.image is not None
    left, up, right, down = req.outpaint
    return (req.image.width + left + right, req.image.height + up + down)


# ---------------------------------------------------------------- helpers


def _rng(req: StabilityRequest, *extra: object) -> random.Random:
    return seeded_rng(
        req.service, req.prompt, req.negative_prompt, req.style_preset, req.seed, *extra
    )


def _generated(req: StabilityRequest, size: Size) -> Image.Image:
    return generate(size, _rng(req))


def _source(req: StabilityRequest) -> Image.Image:
    assert req.image is not None
    return req.image.convert("RGB")


def grown(mask: Image.Image, grow: int) -> Image.Image:
    """`mask` grown outward by `grow` px, the new ring blurred; the original strength stays.

    Half of `grow` dilates (any pixel within reach of a painted one becomes
    fully painted), the other half is a box blur, so no pixel farther than
    `grow` from the mask is touched.
    """
    if grow <= 0:
        return mask
    dilate, blur = grow // 2, grow - grow // 2
    wide = mask
    if dilate:
        wide = mask.filter(ImageFilter.BoxBlur(dilate)).point(lambda v: 255 if v else 0)
    return ImageChops.lighter(mask, wide.filter(ImageFilter.BoxBlur(blur)))


def _search_region(req: StabilityRequest, size: Size) -> Image.Image:
    """Where the searched object "is": an ellipse placed by the search/select prompt."""
    return grown(prompt_mask(req.search_prompt, size), req.grow_mask)


def _prompt_color(req: StabilityRequest) -> tuple[int, int, int]:
    rng = seeded_rng("recolor", req.prompt, req.seed)
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


# --------------------------------------------------------------- services


def _text_or_image_to_image(req: StabilityRequest) -> Image.Image:
    """Ultra, Core, SD3.5: text-to-image at the ratio's size; image-to-image near the input's ratio.

    strength weighs the new content: 0 gives back the (resized) input, 1 ignores it.
    """
    if req.image is None:
        return _generated(req, STABILITY_ASPECT_SIZES[req.aspect_ratio])
    size = closest_ladder_size(req.image.size)
    source = _source(req).resize(size, Image.Resampling.BILINEAR)
    return Image.blend(source, _generated(req, size), req.strength)


def _inpaint(req: StabilityRequest) -> Image.Image:
    assert req.mask is not None
    source = _source(req)
    region = grown(req.mask, req.grow_mask)
    return Image.composite(_generated(req, source.size), source, region)


def _erase(req: StabilityRequest) -> Image.Image:
    """Fill the masked area with a smooth guess of the surrounding background."""
    assert req.mask is not None
    source = _source(req)
    background = source.resize((4, 4), Image.Resampling.BOX).resize(
        source.size, Image.Resampling.BILINEAR
    )
    return Image.composite(background, source, grown(req.mask, req.grow_mask))


def _search_replace(req: StabilityRequest) -> Image.Image:
    source = _source(req)
    region = _search_region(req, source.size)
    return Image.composite(_generated(req, source.size), source, region)


def _search_recolor(req: StabilityRequest) -> Image.Image:
    """Keep the object's shading, change its colour to one the prompt picks."""
    source = _source(req)
    recolored = ImageOps.colorize(source.convert("L"), (0, 0, 0), _prompt_color(req))
    return Image.composite(recolored, source, _search_region(req, source.size))


def _remove_background(req: StabilityRequest) -> Image.Image:
    assert req.image is not None
    return transparent_background(req.image)


def _control(req: StabilityRequest) -> Image.Image:
    """Sketch follows the input's edges, Structure its shading; control_strength weighs them."""
    source = _source(req)
    guide = source.convert("L")
    if req.service is S.CONTROL_SKETCH:
        guide = ImageOps.invert(guide.filter(ImageFilter.FIND_EDGES))
    structure = Image.merge("RGB", (guide, guide, guide))
    return Image.blend(_generated(req, source.size), structure, req.control_strength * 0.8)


def _style_guide(req: StabilityRequest) -> Image.Image:
    """New content at the ratio's size, pulled towards the reference's colours by fidelity."""
    size = STABILITY_ASPECT_SIZES[req.aspect_ratio]
    style = _source(req).resize(size, Image.Resampling.BILINEAR)
    style = style.filter(ImageFilter.BoxBlur(8))
    return Image.blend(_generated(req, size), style, req.fidelity * 0.8)


def _style_transfer(req: StabilityRequest) -> Image.Image:
    """The init image restyled; style_strength 0 gives the input back unchanged."""
    assert req.style_image is not None
    source = _source(req)
    style = req.style_image.convert("RGB").resize(source.size, Image.Resampling.BILINEAR)
    styled = Image.blend(style, _generated(req, source.size), 0.5)
    amount = req.change_strength * (1 - 0.5 * req.composition_fidelity) * req.style_strength
    return Image.blend(source, styled, amount)


def _outpaint(req: StabilityRequest) -> Image.Image:
    """New content around the input, which stays pixel-identical at (left, up)."""
    canvas = _generated(req, outpaint_size(req))
    canvas.paste(_source(req), (req.outpaint[0], req.outpaint[1]))
    return canvas


def _fast_upscale(req: StabilityRequest) -> Image.Image:
    source = _source(req)
    size = (source.width * FAST_UPSCALE_FACTOR, source.height * FAST_UPSCALE_FACTOR)
    return source.resize(size, Image.Resampling.BICUBIC)


def _conservative_upscale(req: StabilityRequest) -> Image.Image:
    source = _source(req)
    return source.resize(upscale_size(source.size), Image.Resampling.BICUBIC)


def _creative_upscale(req: StabilityRequest) -> Image.Image:
    """Upscaled, with new detail mixed in: more of it the higher the creativity."""
    upscaled = _conservative_upscale(req)
    return Image.blend(upscaled, _generated(req, upscaled.size), req.creativity)


_RENDERERS: dict[StabilityService, Callable[[StabilityRequest], Image.Image]] = {
    S.ULTRA: _text_or_image_to_image,
    S.CORE: _text_or_image_to_image,
    S.SD35_LARGE: _text_or_image_to_image,
    S.REMOVE_BACKGROUND: _remove_background,
    S.ERASE_OBJECT: _erase,
    S.INPAINT: _inpaint,
    S.SEARCH_REPLACE: _search_replace,
    S.SEARCH_RECOLOR: _search_recolor,
    S.CONTROL_SKETCH: _control,
    S.CONTROL_STRUCTURE: _control,
    S.STYLE_GUIDE: _style_guide,
    S.STYLE_TRANSFER: _style_transfer,
    S.OUTPAINT: _outpaint,
    S.FAST_UPSCALE: _fast_upscale,
    S.CONSERVATIVE_UPSCALE: _conservative_upscale,
    S.CREATIVE_UPSCALE: _creative_upscale,
}
