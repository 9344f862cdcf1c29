"""Scalar checks: prompt texts, bounded numbers, enums, names and colours.

Each check records a violation on `ctx` and returns a usable value anyway, so
the caller can keep going and report every problem of the request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TypeVar

from google.protobuf.message import Message

from gateway.validation.violations import Context, show
from titan.gateway.v1 import tasks_pb2

E = TypeVar("E")
_GrowsMask = (
    tasks_pb2.InpaintingTask
    | tasks_pb2.SearchAndReplaceTask
    | tasks_pb2.SearchAndRecolorTask
    | tasks_pb2.EraseObjectTask
)

MAX_COLORS = 10
MAX_GROW_MASK = 20
_HEX_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
_STYLES_SHOWN = 6


def required_text(ctx: Context, field: str, value: str) -> str:
    """A prompt that must be given: not blank, within the family's length."""
    if not value.strip():
        ctx.add(field, f"is required: 1-{ctx.limits.max_text} characters, not only whitespace")
        return value
    _check_length(ctx, field, value)
    return value


def optional_text(ctx: Context, field: str, value: str) -> str | None:
    """An optional prompt; empty or whitespace-only means "not given" (None)."""
    if not value.strip():
        return None
    _check_length(ctx, field, value)
    return value


def _check_length(ctx: Context, field: str, value: str) -> None:
    # Characters are Unicode code points, as JSON Schema's maxLength counts them.
    if len(value) > ctx.limits.max_text:
        ctx.add(
            field,
            f"must be at most {ctx.limits.max_text} characters for {ctx.model_id} "
            f"(got {len(value)})",
        )


def float32(value: float) -> float:
    """A proto `float` as the number the caller most likely wrote (0.7, not 0.699999988)."""
    return float(f"{value:.7g}")


def bounded_float(ctx: Context, field: str, value: float, low: float, high: float) -> float:
    """A proto float within [low, high]; NaN and infinities are rejected."""
    number = float32(value)
    if not math.isfinite(number) or not low <= number <= high:
        ctx.add(field, f"must be between {low} and {high} (got {number})")
    return number


def optional_float(
    ctx: Context, prefix: str, message: Message, name: str, low: float, high: float
) -> float | None:
    """The proto `optional float` `name` of `message` within [low, high]; None if unset."""
    if not message.HasField(name):
        return None
    return bounded_float(ctx, f"{prefix}.{name}", getattr(message, name), low, high)


def grow_mask(ctx: Context, prefix: str, message: _GrowsMask) -> int | None:
    """`grow_mask`, 0-20 pixels, on Stability models only; None if unset."""
    if not message.HasField("grow_mask"):
        return None
    field, value = f"{prefix}.grow_mask", message.grow_mask
    if not ctx.is_stability:
        ctx.add(field, f"is not supported by {ctx.model_id}: only Stability models grow masks")
        return None
    return value if bounded_int(ctx, field, value, 0, MAX_GROW_MASK) else None


def bounded_int(ctx: Context, field: str, value: int, low: int, high: int) -> bool:
    """Whether `value` is within [low, high]; records a violation if not."""
    if low <= value <= high:
        return True
    ctx.add(field, f"must be between {low} and {high} (got {value})")
    return False


def enum_value(ctx: Context, field: str, value: int, choices: Mapping[int, E]) -> E | None:
    """The domain enum for a proto enum number; 0 (unspecified) gives None."""
    if value == 0:
        return None
    if value not in choices:
        names = ", ".join(str(choice) for choice in choices.values())
        ctx.add(field, f"must be one of {names} (got unknown value {value})")
        return None
    return choices[value]


def choice(ctx: Context, field: str, value: str, choices: Sequence[str]) -> str | None:
    """One of the model's own names (e.g. Nova's "BOUNDING_BOX"); empty means None."""
    if not value:
        return None
    if value not in choices:
        ctx.add(field, f"must be one of {', '.join(choices)} (got {show(value)})")
        return None
    return value


def style(ctx: Context, field: str, value: str) -> str | None:
    """A style name from the model's list; empty means "no style" (None)."""
    if not value:
        return None
    styles = ctx.limits.styles
    if not styles:
        ctx.add(field, f"is not supported by {ctx.model_id}: it has no styles (got {show(value)})")
        return None
    if value in styles:
        return value
    shown = ", ".join(styles[:_STYLES_SHOWN]) + (", ..." if len(styles) > _STYLES_SHOWN else "")
    hint = next((f"; did you mean {s!r}?" for s in styles if s.lower() == value.lower()), "")
    ctx.add(
        field,
        f"must be one of the {len(styles)} styles of {ctx.model_id} ({shown}) "
        f"(got {show(value)}){hint}",
    )
    return None


def colors(ctx: Context, field: str, values: Sequence[str]) -> tuple[str, ...]:
    """1-10 "#RRGGBB" colours, normalised to upper case."""
    if not 1 <= len(values) <= MAX_COLORS:
        ctx.add(field, f"must have 1-{MAX_COLORS} colours (got {len(values)})")
    for index, value in enumerate(values):
        if not _HEX_COLOR.fullmatch(value):
            ctx.add(f"{field}[{index}]", f"must be a hex colour like #1A2B3C (got {show(value)})")
    return tuple(value.upper() for value in values)
