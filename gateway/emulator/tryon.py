"""Nova Canvas VIRTUAL_TRY_ON: the schema, the cross-field rules and the garment geometry.

Facts from titan-api.md section 3 and AWS's "Virtual try-on" page
(nova/latest/userguide/image-gen-vto.html): ``sourceImage`` and
``referenceImage`` are required; ``maskType`` picks exactly one mask object
(``imageBasedMask`` for IMAGE, ``garmentBasedMask`` for GARMENT,
``promptBasedMask`` for PROMPT); there is no text or negativeText; black mask
pixels mark the area to modify; the mask can be returned; up to 5 images.

Kept free of ``rules`` and ``render`` so both can import it. The garment
geometry is the emulator's own choice (AWS does not publish one): a fixed box
per garment class, in fractions of the source image, so a test can predict it.
maskExclusions are validated and kept but do not change the rendered mask (the
boxes never cover the face, and the emulator does not find hands or poses).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from gateway.emulator import models as m
from gateway.emulator.errors import malformed
from gateway.emulator.images import ImageRules, decode_image, mask_region
from gateway.emulator.schema import BOOLEAN, OBJECT, STRING, Field

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions
BASE = "#/virtualTryOnParams"


@dataclass(frozen=True)
class TryOnParams:
    """The virtualTryOnParams settings that are not images, after defaults."""

    mask_type: str
    mask_shape: str = "DEFAULT"
    garment_class: str | None = None
    long_sleeve_style: str | None = None
    tucking_style: str | None = None
    outer_layer_style: str | None = None
    preserve_body_pose: str = "DEFAULT"
    preserve_hands: str = "DEFAULT"
    preserve_face: str = "DEFAULT"
    merge_style: str = "BALANCED"


@dataclass(frozen=True, eq=False)
class ParsedTryOn:
    """A checked virtualTryOnParams with its images decoded."""

    source: Image.Image
    reference: Image.Image
    mask: Image.Image | None  # IMAGE only: L mode, 255 where the mask is black
    mask_prompt: str | None  # PROMPT only
    return_mask: bool
    params: TryOnParams


# ---------------------------------------------------------------- schema


def try_on_props(model: m.ModelSpec) -> dict[str, Field]:
    """virtualTryOnParams' properties; unknown keys are refused like everywhere else."""
    image = Field(STRING, required=True, min_length=1)
    shape = Field(STRING, enum=m.TRY_ON_MASK_SHAPES)
    toggle = Field(STRING, enum=m.MASK_EXCLUSION_VALUES)
    styling = {
        "longSleeveStyle": Field(STRING, enum=m.LONG_SLEEVE_STYLES),
        "tuckingStyle": Field(STRING, enum=m.TUCKING_STYLES),
        "outerLayerStyle": Field(STRING, enum=m.OUTER_LAYER_STYLES),
    }
    garment = {
        "maskShape": shape,
        "garmentClass": Field(STRING, required=True, enum=m.GARMENT_CLASSES),
        "garmentStyling": Field(OBJECT, properties=styling),
    }
    prompt = {
        "maskShape": shape,
        "maskPrompt": Field(STRING, required=True, min_length=1, max_length=model.max_text),
    }
    exclusions = {"preserveBodyPose": toggle, "preserveHands": toggle, "preserveFace": toggle}
    return {
        "sourceImage": image,
        "referenceImage": image,
        "maskType": Field(STRING, required=True, enum=m.TRY_ON_MASK_TYPES),
        "imageBasedMask": Field(OBJECT, properties={"maskImage": image}),
        "garmentBasedMask": Field(OBJECT, properties=garment),
        "promptBasedMask": Field(OBJECT, properties=prompt),
        "maskExclusions": Field(OBJECT, properties=exclusions),
        "mergeStyle": Field(STRING, enum=m.MERGE_STYLES),
        "returnMask": Field(BOOLEAN),
    }


# ------------------------------------------------------- cross-field rules


def parse_try_on(params: dict[str, Any], rules: ImageRules) -> ParsedTryOn:
    """Apply the rules the schema cannot express, then decode the images.

    `params` already passed `try_on_props`. The mask object for `maskType` is
    required and the other two are refused, so a request that says GARMENT
    but carries an imageBasedMask cannot pass by accident.
    """
    mask_type: str = params["maskType"]
    wanted = m.TRY_ON_MASK_FIELDS[mask_type]
    if wanted not in params:
        raise malformed(BASE, f"{wanted} is required when maskType is {mask_type}")
    for other in m.TRY_ON_MASK_FIELDS.values():
        if other != wanted and other in params:
            raise malformed(BASE, f"{other} is not permitted when maskType is {mask_type}")
    source = decode_image(params["sourceImage"], f"{BASE}/sourceImage", rules)
    reference = decode_image(params["referenceImage"], f"{BASE}/referenceImage", rules)
    mask_object: dict[str, Any] = params[wanted]
    mask = None
    if mask_type == "IMAGE":
        path = f"{BASE}/imageBasedMask/maskImage"
        mask = mask_region(decode_image(mask_object["maskImage"], path, rules), source.size, path)
    styling: dict[str, Any] = mask_object.get("garmentStyling", {})
    exclusions: dict[str, Any] = params.get("maskExclusions", {})
    settings = TryOnParams(
        mask_type=mask_type,
        mask_shape=mask_object.get("maskShape", "DEFAULT"),
        garment_class=mask_object.get("garmentClass"),
        long_sleeve_style=styling.get("longSleeveStyle"),
        tucking_style=styling.get("tuckingStyle"),
        outer_layer_style=styling.get("outerLayerStyle"),
        preserve_body_pose=exclusions.get("preserveBodyPose", "DEFAULT"),
        preserve_hands=exclusions.get("preserveHands", "DEFAULT"),
        preserve_face=exclusions.get("preserveFace", "DEFAULT"),
        merge_style=params.get("mergeStyle", "BALANCED"),
    )
    return ParsedTryOn(
        source=source,
        reference=reference,
        mask=mask,
        mask_prompt=mask_object.get("maskPrompt"),
        return_mask=bool(params.get("returnMask", False)),
        params=settings,
    )


# ------------------------------------------------------- garment geometry

_UPPER = "upper"
_LOWER = "lower"
_FULL = "full"
_FEET = "feet"

# garmentClass -> (body part, box). Boxes sit where a centred, standing person
# would wear the garment: upper body 20-58 % of the height, legs 50-92 %, feet
# at the bottom; sleeved classes are wider than sleeveless ones.
GARMENT_BOXES: dict[str, tuple[str, Box]] = {
    "UPPER_BODY": (_UPPER, (0.12, 0.20, 0.88, 0.58)),
    "LONG_SLEEVE_SHIRT": (_UPPER, (0.12, 0.20, 0.88, 0.58)),
    "OTHER_UPPER_BODY": (_UPPER, (0.12, 0.20, 0.88, 0.58)),
    "SHORT_SLEEVE_SHIRT": (_UPPER, (0.22, 0.20, 0.78, 0.58)),
    "NO_SLEEVE_SHIRT": (_UPPER, (0.30, 0.20, 0.70, 0.58)),
    "LOWER_BODY": (_LOWER, (0.26, 0.50, 0.74, 0.92)),
    "LONG_PANTS": (_LOWER, (0.26, 0.50, 0.74, 0.92)),
    "OTHER_LOWER_BODY": (_LOWER, (0.26, 0.50, 0.74, 0.92)),
    "SHORT_PANTS": (_LOWER, (0.26, 0.50, 0.74, 0.70)),
    "FULL_BODY": (_FULL, (0.12, 0.20, 0.88, 0.92)),
    "FULL_BODY_OUTFIT": (_FULL, (0.12, 0.20, 0.88, 0.92)),
    "OTHER_FULL_BODY": (_FULL, (0.12, 0.20, 0.88, 0.92)),
    "LONG_DRESS": (_FULL, (0.20, 0.20, 0.80, 0.92)),
    "SHORT_DRESS": (_FULL, (0.20, 0.20, 0.80, 0.70)),
    "FOOTWEAR": (_FEET, (0.28, 0.88, 0.72, 0.99)),
    "SHOES": (_FEET, (0.28, 0.88, 0.72, 0.99)),
    "OTHER_FOOTWEAR": (_FEET, (0.28, 0.88, 0.72, 0.99)),
    "BOOTS": (_FEET, (0.28, 0.78, 0.72, 0.99)),
}
_SLEEVED = frozenset({"UPPER_BODY", "LONG_SLEEVE_SHIRT", "OTHER_UPPER_BODY", "FULL_BODY"})
_UPPER_BOTTOM, _TUCKED_BOTTOM = 0.58, 0.52
_OPEN_GAP = 0.06  # an open outer layer leaves a centre strip of the source


def garment_box(params: TryOnParams) -> Box:
    """The garment class's box after garmentStyling (sleeves up, tucked in)."""
    assert params.garment_class is not None
    part, (left, top, right, bottom) = GARMENT_BOXES[params.garment_class]
    if params.long_sleeve_style == "SLEEVE_UP" and params.garment_class in _SLEEVED:
        left, right = left + 0.08, right - 0.08
    if params.tucking_style == "TUCKED" and part == _UPPER:
        bottom = _TUCKED_BOTTOM
    return (left, top, right, bottom)


def garment_region(params: TryOnParams, size: tuple[int, int]) -> Image.Image:
    """The GARMENT mask as L (255 inside): the class's box, shaped by maskShape."""
    assert params.garment_class is not None
    part = GARMENT_BOXES[params.garment_class][0]
    width, height = size
    left, top, right, bottom = garment_box(params)
    box = (round(left * width), round(top * height), round(right * width), round(bottom * height))
    region = Image.new("L", size, 0)
    draw = ImageDraw.Draw(region)
    if params.mask_shape == "BOUNDING_BOX":
        draw.rectangle(box, fill=255)
    else:  # CONTOUR and DEFAULT follow the garment: rounded, not a box
        radius = min(box[2] - box[0], box[3] - box[1]) // 4
        draw.rounded_rectangle(box, radius=radius, fill=255)
    if params.outer_layer_style == "OPEN" and part in (_UPPER, _FULL):
        gap = round(_OPEN_GAP * width / 2)
        middle = width // 2
        draw.rectangle(
            (middle - gap, box[1], middle + gap, min(box[3], round(_UPPER_BOTTOM * height))),
            fill=0,
        )
    return region


def shaped(region: Image.Image, mask_shape: str) -> Image.Image:
    """BOUNDING_BOX turns a mask into its bounding rectangle; other shapes keep it."""
    bbox = region.getbbox()
    if mask_shape != "BOUNDING_BOX" or bbox is None:
        return region
    boxed = Image.new("L", region.size, 0)
    ImageDraw.Draw(boxed).rectangle((bbox[0], bbox[1], bbox[2] - 1, bbox[3] - 1), fill=255)
    return boxed


# ------------------------------------------------------------- rendering


def reference_palette(reference: Image.Image, limit: int = 3) -> list[Color]:
    """The reference's garment colours, most common first, without its background.

    The background is the colour most of the border has. Colours that cover
    under 2 % of the image or are close to the background or to a colour
    already taken are skipped; a reference that is one flat colour is all garment.
    """
    small = reference.convert("RGB")
    small.thumbnail((64, 64), Image.Resampling.NEAREST)  # nearest: no blended edge colours
    quantized = small.quantize(colors=8, dither=Image.Dither.NONE)
    flat = quantized.getpalette() or []
    colors = [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat) - 2, 3)]
    width, height = quantized.size
    data = quantized.tobytes()  # one palette index per pixel
    border = Counter(data[:width]) + Counter(data[(height - 1) * width :])
    border += Counter(data[y * width + x] for y in range(height) for x in (0, width - 1))
    background = colors[min(border, key=lambda index: (-border[index], index))]
    counts = Counter(data)
    chosen: list[Color] = []
    for index in sorted(counts, key=lambda i: (-counts[i], i)):
        color = colors[index]
        if counts[index] * 50 < len(data) or _near(color, [background, *chosen]):
            continue
        chosen.append(color)
    return chosen[:limit] or [background]


def _near(color: Color, others: list[Color], tolerance: int = 48) -> bool:
    return any(
        max(abs(a - b) for a, b in zip(color, other, strict=True)) < tolerance for other in others
    )


def dress(
    source: Image.Image,
    reference: Image.Image,
    region: Image.Image,
    rng: random.Random,
    merge_style: str,
) -> Image.Image:
    """Paint a garment in the reference's colours into `region` of `source`.

    The garment is the reference's main colour with seeded stripes of its
    second colour (a darker shade when it has one colour), shaded by the
    source's luminance so the body's folds show through. BALANCED and DETAILED
    keep every pixel outside the region byte-identical (DETAILED without the
    shading); SEAMLESS feathers the region's edge by 2 px.
    """
    base = source.convert("RGB")
    colors = reference_palette(reference)
    main = colors[0]
    darker = (main[0] * 3 // 5, main[1] * 3 // 5, main[2] * 3 // 5)
    second = colors[1] if len(colors) > 1 else darker
    garment = Image.new("RGB", base.size, main)
    _draw_stripes(ImageDraw.Draw(garment), base.size, second, rng)
    if merge_style != "DETAILED":
        shade = base.convert("L").point(lambda v: 190 + v * 65 // 255)
        garment = ImageChops.multiply(garment, Image.merge("RGB", (shade, shade, shade)))
    if merge_style == "SEAMLESS":
        region = region.filter(ImageFilter.GaussianBlur(2))
    return Image.composite(garment, base, region)


def _draw_stripes(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], color: Color, rng: random.Random
) -> None:
    width, height = size
    period = rng.randint(max(8, height // 24), max(12, height // 10))
    thickness = max(1, period // 4)
    offset = rng.randrange(period)
    direction = rng.randrange(3)
    for start in range(offset - height, width + height, period):
        if direction == 0:
            draw.line((0, start, width, start), fill=color, width=thickness)
        elif direction == 1:
            draw.line((start, 0, start, height), fill=color, width=thickness)
        else:
            draw.line((start, 0, start - height, height), fill=color, width=thickness)
