"""Nova Canvas VIRTUAL_TRY_ON: `virtual_try_on` → `VirtualTryOn`.

The string fields take Nova's own values (titan-api.md §3); each mask type
has its own fields, and a field of another mask type is refused rather than
silently dropped.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.domain import InputImage, VirtualTryOn
from gateway.validation.decoded import Decoded
from gateway.validation.fields import choice, enum_value, required_text
from gateway.validation.images import check_image, check_mask
from gateway.validation.violations import Context
from titan.gateway.v1 import tasks_pb2

NAME = "virtual_try_on"
GARMENT_CLASSES = (
    "UPPER_BODY", "LOWER_BODY", "FULL_BODY", "FOOTWEAR",
    "LONG_SLEEVE_SHIRT", "SHORT_SLEEVE_SHIRT", "NO_SLEEVE_SHIRT", "OTHER_UPPER_BODY",
    "LONG_PANTS", "SHORT_PANTS", "OTHER_LOWER_BODY",
    "LONG_DRESS", "SHORT_DRESS", "FULL_BODY_OUTFIT", "OTHER_FULL_BODY",
    "SHOES", "BOOTS", "OTHER_FOOTWEAR",
)  # fmt: skip
MASK_SHAPES = ("CONTOUR", "BOUNDING_BOX", "DEFAULT")
PRESERVE = ("ON", "OFF", "DEFAULT")
STYLING: dict[str, tuple[str, ...]] = {
    "long_sleeve_style": ("SLEEVE_DOWN", "SLEEVE_UP"),
    "tucking_style": ("UNTUCKED", "TUCKED"),
    "outer_layer_style": ("CLOSED", "OPEN"),
}
_PRESERVE_FIELDS = ("preserve_body_pose", "preserve_hands", "preserve_face")
_MASK_TYPES: dict[int, str] = {
    tasks_pb2.TRY_ON_MASK_TYPE_GARMENT: "GARMENT",
    tasks_pb2.TRY_ON_MASK_TYPE_IMAGE: "IMAGE",
    tasks_pb2.TRY_ON_MASK_TYPE_PROMPT: "PROMPT",
}
_MERGE_STYLES: dict[int, str] = {
    tasks_pb2.TRY_ON_MERGE_STYLE_BALANCED: "BALANCED",
    tasks_pb2.TRY_ON_MERGE_STYLE_SEAMLESS: "SEAMLESS",
    tasks_pb2.TRY_ON_MERGE_STYLE_DETAILED: "DETAILED",
}
# The fields that belong to only some mask types.
_OWNERS: dict[str, frozenset[str]] = {
    "garment_class": frozenset({"GARMENT"}),
    **{styling: frozenset({"GARMENT"}) for styling in STYLING},
    "mask_shape": frozenset({"GARMENT", "PROMPT"}),
    "mask_image": frozenset({"IMAGE"}),
    "mask_prompt": frozenset({"PROMPT"}),
}


def decode_virtual_try_on(ctx: Context, task: tasks_pb2.VirtualTryOnTask) -> Decoded:
    source = check_image(ctx, f"{NAME}.source_image", task.source_image)
    reference = check_image(ctx, f"{NAME}.reference_image", task.reference_image)
    mask_type = _mask_type(ctx, task)
    mask = _mask(ctx, task, mask_type, source)
    shape = _owned(ctx, task, mask_type, "mask_shape", MASK_SHAPES)
    merge = enum_value(ctx, f"{NAME}.merge_style", task.merge_style, _MERGE_STYLES)
    preserve = {name: _named(ctx, task, name, PRESERVE) for name in _PRESERVE_FIELDS}
    styling = {name: _owned(ctx, task, mask_type, name, values) for name, values in STYLING.items()}
    if source is None or reference is None or mask_type is None or not mask.ok:
        return Decoded(None, source)
    try_on = VirtualTryOn(
        source,
        reference,
        mask_type,
        garment_class=mask.garment_class,
        mask_image=mask.image,
        mask_prompt=mask.prompt,
        mask_shape=shape,
        merge_style=merge,
        **preserve,
        **styling,
        return_mask=task.return_mask,
    )
    return Decoded(try_on, source)


def _mask_type(ctx: Context, task: tasks_pb2.VirtualTryOnTask) -> str | None:
    """GARMENT, IMAGE or PROMPT (unset: GARMENT); None for an unknown number."""
    mask_type = enum_value(ctx, f"{NAME}.mask_type", task.mask_type, _MASK_TYPES)
    if mask_type is None and task.mask_type:
        return None  # reported; its fields cannot be checked
    mask_type = mask_type or "GARMENT"
    for name, owners in _OWNERS.items():
        if mask_type not in owners and getattr(task, name):
            only = " and ".join(sorted(owners))
            ctx.add(f"{NAME}.{name}", f"must not be set for mask_type {mask_type} (only {only})")
    return mask_type


class _Mask(NamedTuple):
    ok: bool
    garment_class: str | None = None
    image: InputImage | None = None
    prompt: str | None = None


def _mask(
    ctx: Context, task: tasks_pb2.VirtualTryOnTask, mask_type: str | None, source: InputImage | None
) -> _Mask:
    """The mask type's own required field: garment_class, mask_image or mask_prompt."""
    if mask_type == "GARMENT":
        if not task.garment_class:
            shown = ", ".join(GARMENT_CLASSES[:4])
            ctx.add(f"{NAME}.garment_class", f"is required for mask_type GARMENT, e.g. {shown}")
            return _Mask(False)
        garment = _named(ctx, task, "garment_class", GARMENT_CLASSES)
        return _Mask(garment is not None, garment_class=garment)
    if mask_type == "IMAGE":
        if not task.mask_image:
            ctx.add(f"{NAME}.mask_image", "is required for mask_type IMAGE")
            return _Mask(False)
        field, source_field = f"{NAME}.mask_image", f"{NAME}.source_image"
        image = check_mask(ctx, field, task.mask_image, source, source_field)
        return _Mask(image is not None, image=image)
    if mask_type == "PROMPT":
        return _Mask(True, prompt=required_text(ctx, f"{NAME}.mask_prompt", task.mask_prompt))
    return _Mask(False)


def _owned(
    ctx: Context,
    task: tasks_pb2.VirtualTryOnTask,
    mask_type: str | None,
    name: str,
    values: tuple[str, ...],
) -> str | None:
    """A field of some mask types only; for the others it was refused if set."""
    if mask_type not in _OWNERS[name]:
        return None
    return _named(ctx, task, name, values)


def _named(
    ctx: Context, task: tasks_pb2.VirtualTryOnTask, name: str, values: tuple[str, ...]
) -> str | None:
    return choice(ctx, f"{NAME}.{name}", getattr(task, name), values)
