"""Real, deterministic PNG output for every task type.

The images are not art, but each task does what its name promises in a way a
test can measure: edits keep unmasked pixels byte-identical, colour-guided
output uses the palette, conditioning follows the reference's edges,
background removal makes the background transparent. Randomness comes from
sha256 of the prompt and seed (never ``hash()``, which is salted per process),
so the same request gives the same bytes in every run.

Rendering is CPU work; callers run ``render`` in a thread.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps, ImageStat

from gateway.emulator import models as m
from gateway.emulator import tryon
from gateway.emulator.rules import ValidatedRequest

Color = tuple[int, int, int]
BACKGROUND_TOLERANCE = 48
_TRANSPOSES = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
)


@dataclass(frozen=True)
class RenderResult:
    """PNG-encoded output images, and the mask used when returnMask was asked for."""

    images: list[bytes]
    mask: bytes | None = None


def render(req: ValidatedRequest, seeds: Sequence[int]) -> RenderResult:
    """Render one PNG per seed for a validated request."""
    renderer = _RENDERERS[req.task]
    images = [encode_png(renderer(req, seed)) for seed in seeds]
    mask = None
    if req.return_mask and req.task in (m.INPAINTING, m.OUTPAINTING, m.VIRTUAL_TRY_ON):
        region = try_on_region(req) if req.task == m.VIRTUAL_TRY_ON else edit_region(req)
        mask = encode_png(ImageOps.invert(region).convert("RGB"))
    return RenderResult(images, mask)


def encode_png(image: Image.Image) -> bytes:
    """PNG at compress_level=1: output size matters less than speed here."""
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def seeded_rng(*parts: object) -> random.Random:
    """A Random seeded from sha256 of the parts, stable across processes."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _random_color(rng: random.Random) -> Color:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def generate(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A gradient background with a few seeded shapes: cheap, but content-like."""
    width, height = size
    low, high = _random_color(rng), _random_color(rng)
    kind = rng.randrange(len(_TRANSPOSES) + 1)
    if kind == len(_TRANSPOSES):
        gradient = Image.radial_gradient("L")
    else:
        gradient = Image.linear_gradient("L")
        transpose = _TRANSPOSES[kind]
        if transpose is not None:
            gradient = gradient.transpose(transpose)
    image = ImageOps.colorize(gradient.resize(size, Image.Resampling.BILINEAR), low, high)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 7)):
        _draw_shape(draw, rng, width, height)
    return image


def _draw_shape(draw: ImageDraw.ImageDraw, rng: random.Random, width: int, height: int) -> None:
    w = rng.randint(max(1, width // 10), max(1, width // 2))
    h = rng.randint(max(1, height // 10), max(1, height // 2))
    x, y = rng.randrange(max(1, width - w)), rng.randrange(max(1, height - h))
    fill = _random_color(rng)
    shape = rng.randrange(3)
    if shape == 0:
        draw.ellipse((x, y, x + w, y + h), fill=fill)
    elif shape == 1:
        draw.rectangle((x, y, x + w, y + h), fill=fill)
    else:
        draw.polygon([(x + w // 2, y), (x, y + h), (x + w, y + h)], fill=fill)


def _generated(req: ValidatedRequest, seed: int, size: tuple[int, int]) -> Image.Image:
    rng = seeded_rng(req.task, req.text, req.negative_text, req.style, seed)
    return generate(size, rng)


# ------------------------------------------------------------------ tasks


def _text_image(req: ValidatedRequest, seed: int) -> Image.Image:
    image = _generated(req, seed, req.output_size)
    if req.condition_image is None:
        return image
    if req.control_mode == "SEGMENTATION":
        return _apply_segmentation(image, req.condition_image, req.control_strength)
    return _apply_edges(image, req.condition_image, req.control_strength)


def _apply_edges(image: Image.Image, reference: Image.Image, strength: float) -> Image.Image:
    """CANNY_EDGE conditioning: carry the reference's structure into the output.

    The generated content is lifted to a bright range and multiplied by the
    reference's luminance (faded towards white by 1 - strength), so every
    intensity step of the reference - every edge an edge detector finds - sits
    at the same pixel, with the same polarity, in the output. (Drawing detected
    edges as dark lines would shift the detected edges by a pixel.)
    """
    canvas = image.point(lambda v: 80 + v * 175 // 255)
    gray = reference.convert("L").resize(image.size, Image.Resampling.BILINEAR)
    shade = gray.point(lambda v: round(255 - strength * (255 - v)))
    return ImageChops.multiply(canvas, Image.merge("RGB", (shade, shade, shade)))


def _apply_segmentation(image: Image.Image, reference: Image.Image, strength: float) -> Image.Image:
    """SEGMENTATION conditioning: follow the reference's flat colour regions."""
    regions = reference.convert("RGB").resize(image.size, Image.Resampling.NEAREST)
    regions = regions.quantize(colors=6, dither=Image.Dither.NONE).convert("RGB")
    return Image.blend(image, regions, strength)


def edit_region(req: ValidatedRequest) -> Image.Image:
    """The masked region as L (255 inside): the mask image, or one derived from maskPrompt."""
    if req.mask is not None:
        return req.mask
    assert req.image is not None
    assert req.mask_prompt is not None
    return prompt_mask(req.mask_prompt, req.image.size)


def prompt_mask(prompt: str, size: tuple[int, int]) -> Image.Image:
    """An ellipse covering about a quarter of the image, placed by the prompt text."""
    width, height = size
    rng = seeded_rng("maskPrompt", prompt)
    rx, ry = width * 0.3, height * 0.265  # pi * 0.3 * 0.265 ~= 0.25 of the area
    cx = rng.uniform(rx, width - rx)
    cy = rng.uniform(ry, height - ry)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    return mask


def _inpainting(req: ValidatedRequest, seed: int) -> Image.Image:
    """Replace the masked region; every other pixel is the input's."""
    assert req.image is not None
    source = req.image.convert("RGB")
    generated = _generated(req, seed, source.size)
    return Image.composite(generated, source, edit_region(req))


def _outpainting(req: ValidatedRequest, seed: int) -> Image.Image:
    """Keep the masked region, generate the rest.

    PRECISE keeps masked pixels byte-identical. DEFAULT feathers the mask edge
    (2 px blur), so kept pixels next to the boundary blend with the new
    background, as Bedrock says DEFAULT may modify them.
    """
    assert req.image is not None
    source = req.image.convert("RGB")
    keep = edit_region(req)
    if req.out_painting_mode == "DEFAULT":
        keep = keep.filter(ImageFilter.GaussianBlur(2))
    generated = _generated(req, seed, source.size)
    return Image.composite(source, generated, keep)


def try_on_region(req: ValidatedRequest) -> Image.Image:
    """The try-on area as L (255 inside), for each maskType.

    IMAGE honours the request's mask (black = garment area); GARMENT is the
    garment class's box (``tryon.GARMENT_BOXES``); PROMPT is the same
    prompt-placed ellipse INPAINTING's maskPrompt gets, as AWS says PROMPT
    uses the same automatic masking. maskShape BOUNDING_BOX squares either off.
    """
    assert req.image is not None
    assert req.try_on is not None
    if req.try_on.mask_type == "IMAGE":
        assert req.mask is not None
        return req.mask
    if req.try_on.mask_type == "GARMENT":
        return tryon.garment_region(req.try_on, req.image.size)
    assert req.mask_prompt is not None
    return tryon.shaped(prompt_mask(req.mask_prompt, req.image.size), req.try_on.mask_shape)


def _try_on(req: ValidatedRequest, seed: int) -> Image.Image:
    """Dress the try-on area in the reference's colours; the output has sourceImage's size."""
    assert req.image is not None
    assert req.reference_image is not None
    assert req.try_on is not None
    rng = seeded_rng(req.task, req.try_on, seed)
    return tryon.dress(
        req.image, req.reference_image, try_on_region(req), rng, req.try_on.merge_style
    )


def _variation(req: ValidatedRequest, seed: int) -> Image.Image:
    """Blend the inputs' average with new content; similarityStrength weighs the inputs."""
    size = req.output_size
    average: Image.Image | None = None
    for count, source in enumerate(req.images, start=1):
        resized = source.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        average = resized if average is None else Image.blend(average, resized, 1 / count)
    assert average is not None
    return Image.blend(_generated(req, seed, size), average, req.similarity_strength)


def _color_guided(req: ValidatedRequest, seed: int) -> Image.Image:
    """Quantize generated content to the palette, plus one swatch per colour."""
    size = req.output_size
    image = _generated(req, seed, size)
    if req.reference_image is not None:
        reference = req.reference_image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        image = Image.blend(image, reference, 0.5)
    quantized = image.quantize(palette=_palette_image(req.colors), dither=Image.Dither.NONE)
    output = quantized.convert("RGB")
    _draw_swatches(output, req.colors, seeded_rng("swatches", req.text, seed))
    return output


def _palette_image(colors: Sequence[Color]) -> Image.Image:
    flat = [channel for color in colors for channel in color]
    flat += list(colors[0]) * (256 - len(colors))
    palette = Image.new("P", (1, 1))
    palette.putpalette(flat)
    return palette


def _draw_swatches(image: Image.Image, colors: Sequence[Color], rng: random.Random) -> None:
    """A band of non-overlapping swatches so every palette colour is present."""
    width, height = image.size
    band = max(1, height // 10)
    top = rng.randrange(max(1, height - band))
    step = width / len(colors)
    draw = ImageDraw.Draw(image)
    for index, color in enumerate(colors):
        left = round(index * step)
        right = max(left, round((index + 1) * step) - 1)
        draw.rectangle((left, top, right, top + band - 1), fill=color)


def _background_removal(req: ValidatedRequest, seed: int) -> Image.Image:
    assert req.image is not None
    return transparent_background(req.image)


def transparent_background(image: Image.Image) -> Image.Image:
    """RGBA: pixels close to the border's median colour become fully transparent."""
    source = image.convert("RGB")
    background = _border_color(source)
    diff = ImageChops.difference(source, Image.new("RGB", source.size, background))
    red, green, blue = diff.split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    alpha = distance.point(lambda v: 255 if v > BACKGROUND_TOLERANCE else 0)
    output = source.copy()
    output.putalpha(alpha)
    return output


def _border_color(image: Image.Image) -> Color:
    width, height = image.size
    strips = [
        image.crop((0, 0, width, 1)),
        image.crop((0, height - 1, width, height)),
        image.crop((0, 0, 1, height)).transpose(Image.Transpose.ROTATE_90),
        image.crop((width - 1, 0, width, height)).transpose(Image.Transpose.ROTATE_90),
    ]
    border = Image.new("RGB", (2 * width + 2 * height, 1))
    offset = 0
    for strip in strips:
        border.paste(strip, (offset, 0))
        offset += strip.width
    median = ImageStat.Stat(border).median
    return (int(median[0]), int(median[1]), int(median[2]))


_RENDERERS: dict[str, Callable[[ValidatedRequest, int], Image.Image]] = {
    m.TEXT_IMAGE: _text_image,
    m.INPAINTING: _inpainting,
    m.OUTPAINTING: _outpainting,
    m.IMAGE_VARIATION: _variation,
    m.COLOR_GUIDED_GENERATION: _color_guided,
    m.BACKGROUND_REMOVAL: _background_removal,
    m.VIRTUAL_TRY_ON: _try_on,
}
