"""`config` (ImageGenerationConfig) → `ImageConfig`, with the model's defaults.

Output size, by task and then by the model's `size_rule`:
- tasks whose output follows the input (`sizes.FOLLOWS_INPUT`): the nominal
  size of `sizes.nominal_size`; width, height and aspect_ratio must not be
  given, except that Titan (`edit_size_allowed`) may be given the input's own
  size for inpainting and outpainting. That size is sent to Bedrock only
  when it is a legal Titan output size, because Bedrock would refuse e.g.
  500x500 in imageGenerationConfig while it accepts (and keeps) a 500x500
  input. Nothing else that follows the input sends a size.
- generation tasks: TITAN one of TITAN_SIZES, NOVA Nova's resolution rules
  (both default 1024x1024, sent); ASPECT_RATIO an aspect ratio of the model's
  table, given as `aspect_ratio` or as one of the table's width/height pairs
  (default 1:1); width/height become the table's size and are not sent.
- background removal: the input's size; Bedrock takes no config for it, so
  config is ignored except that it cannot ask for more than one image.
"""

from __future__ import annotations

import secrets
from typing import NamedTuple

from gateway.domain import ImageConfig, InputImage, OutputFormat, Quality, TaskType
from gateway.registry import (
    DEFAULT_SIZE,
    MAX_CFG_SCALE,
    MAX_IMAGES,
    MIN_CFG_SCALE,
    ModelLimits,
    SizeRule,
    nova_size_problem,
)
from gateway.validation.decoded import Decoded
from gateway.validation.fields import bounded_float, bounded_int, enum_value, float32
from gateway.validation.sizes import (
    FOLLOWS_INPUT,
    Size,
    fmt,
    how_it_follows,
    nominal_size,
    ratio_of,
)
from gateway.validation.violations import Context, show
from titan.gateway.v1 import tasks_pb2

DEFAULT_RATIO = "1:1"
_TITAN_EDITS = frozenset({TaskType.INPAINTING, TaskType.OUTPAINTING})
_QUALITIES: dict[int, Quality] = {
    tasks_pb2.QUALITY_STANDARD: Quality.STANDARD,
    tasks_pb2.QUALITY_PREMIUM: Quality.PREMIUM,
}
_OUTPUT_FORMATS: dict[int, OutputFormat] = {
    tasks_pb2.OUTPUT_FORMAT_PNG: OutputFormat.PNG,
    tasks_pb2.OUTPUT_FORMAT_JPEG: OutputFormat.JPEG,
    tasks_pb2.OUTPUT_FORMAT_WEBP: OutputFormat.WEBP,
}
_Cfg = tasks_pb2.ImageGenerationConfig


class OutputSize(NamedTuple):
    width: int
    height: int
    send: bool
    aspect_ratio: str | None = None


def decode_config(
    ctx: Context, cfg: _Cfg, name: str, task_type: TaskType, decoded: Decoded
) -> ImageConfig:
    """The output settings of task `name` (the oneof member) running as `task_type`."""
    if task_type is TaskType.BACKGROUND_REMOVAL:
        return _background_removal(ctx, cfg, decoded.source)
    count = _count(ctx, cfg)
    size = _output_size(ctx, cfg, name, task_type, decoded)
    return ImageConfig(
        count=count,
        width=size.width,
        height=size.height,
        cfg_scale=_cfg_scale(ctx, cfg),
        seed=_seed(ctx, cfg, count),
        quality=_quality(ctx, cfg),
        send_size=size.send,
        output_format=_output_format(ctx, cfg),
        aspect_ratio=size.aspect_ratio,
    )


def _background_removal(ctx: Context, cfg: _Cfg, source: InputImage | None) -> ImageConfig:
    if cfg.HasField("number_of_images") and cfg.number_of_images != 1:
        got = cfg.number_of_images
        ctx.add("config.number_of_images", f"background removal returns one image (got {got})")
    width, height = DEFAULT_SIZE if source is None else (source.width, source.height)
    return ImageConfig(
        count=1,
        width=width,
        height=height,
        cfg_scale=ctx.limits.cfg_scale_default,
        seed=_default_seed(ctx.limits),
        quality=Quality.STANDARD,
        send_size=False,
    )


def _count(ctx: Context, cfg: _Cfg) -> int:
    if not cfg.HasField("number_of_images"):
        return 1
    count = cfg.number_of_images
    return count if bounded_int(ctx, "config.number_of_images", count, 1, MAX_IMAGES) else 1


def _cfg_scale(ctx: Context, cfg: _Cfg) -> float | None:
    default = ctx.limits.cfg_scale_default
    if not cfg.HasField("cfg_scale"):
        return default
    if default is None:
        ctx.add(
            "config.cfg_scale", f"is not supported by {ctx.model_id} (got {float32(cfg.cfg_scale)})"
        )
        return None
    return bounded_float(ctx, "config.cfg_scale", cfg.cfg_scale, MIN_CFG_SCALE, MAX_CFG_SCALE)


def _seed(ctx: Context, cfg: _Cfg, count: int) -> int:
    if not cfg.HasField("seed"):
        return _default_seed(ctx.limits)
    seed, top = cfg.seed, ctx.limits.seed_max
    if bounded_int(ctx, "config.seed", seed, 0, top) and seed + count - 1 > top:
        ctx.add(
            "config.seed",
            f"must be at most {top - count + 1} for {count} images, because image i "
            f"uses seed + i and seeds go up to {top} (got {seed})",
        )
    return seed


def _default_seed(limits: ModelLimits) -> int:
    """The model's default seed, or (none: Stability, where 0 means "random" and
    would break the seed + i reporting) a random one in [1, seed_max - MAX_IMAGES]."""
    if limits.seed_default is not None:
        return limits.seed_default
    return 1 + secrets.randbelow(max(1, limits.seed_max - MAX_IMAGES))


def _quality(ctx: Context, cfg: _Cfg) -> Quality:
    quality = enum_value(ctx, "config.quality", cfg.quality, _QUALITIES) or Quality.STANDARD
    offered = ctx.limits.qualities
    if quality not in offered:
        has = ", ".join(sorted(offered))
        ctx.add("config.quality", f"{quality} is not offered by {ctx.model_id} (it has: {has})")
    return quality


def _output_format(ctx: Context, cfg: _Cfg) -> OutputFormat:
    field, offered = "config.output_format", ctx.limits.output_formats
    chosen = enum_value(ctx, field, cfg.output_format, _OUTPUT_FORMATS) or OutputFormat.PNG
    if chosen not in offered:
        has = ", ".join(offered)
        ctx.add(field, f"{chosen} is not offered by {ctx.model_id} (it has: {has})")
    return chosen


def _output_size(
    ctx: Context, cfg: _Cfg, name: str, task_type: TaskType, decoded: Decoded
) -> OutputSize:
    if task_type in FOLLOWS_INPUT:
        return _input_size(ctx, cfg, name, task_type, decoded)
    match ctx.limits.size_rule:
        case SizeRule.ASPECT_RATIO:
            return _aspect_ratio_size(ctx, cfg)
        case SizeRule.INPUT:  # a generation task on a model that sizes by its input
            _forbid_size(ctx, cfg, name, "the model takes no size")
            source = decoded.source
            size = DEFAULT_SIZE if source is None else (source.width, source.height)
            return OutputSize(*size, False)
        case _:
            return _free_size(ctx, cfg)


def _free_size(ctx: Context, cfg: _Cfg) -> OutputSize:
    """TITAN and NOVA: width and height, checked by the model's rule."""
    given = _given_size(ctx, cfg)
    if cfg.aspect_ratio:
        ctx.add("config.aspect_ratio", f"is not supported by {ctx.model_id}: give width and height")
    if given is None:
        return OutputSize(*DEFAULT_SIZE, True)
    problem = size_problem(ctx.limits, given)
    if problem:
        ctx.add("config.width", problem)
    return OutputSize(*given, True)


def _input_size(
    ctx: Context, cfg: _Cfg, name: str, task_type: TaskType, decoded: Decoded
) -> OutputSize:
    size = nominal_size(ctx.limits, task_type, decoded.task, decoded.source)
    if task_type in _TITAN_EDITS and ctx.limits.edit_size_allowed:
        return _titan_edit_size(ctx, cfg, name, size, decoded.source is not None)
    _forbid_size(ctx, cfg, name, how_it_follows(task_type))
    return OutputSize(*size, False)


def _titan_edit_size(ctx: Context, cfg: _Cfg, name: str, size: Size, known: bool) -> OutputSize:
    """Titan may be given the input's own size for inpainting and outpainting."""
    given = _given_size(ctx, cfg)
    if given is not None and known and given != size:
        ctx.add(
            "config.width",
            f"must match {name}.image's size ({fmt(size)}) because {name} keeps "
            f"the input's size (got {fmt(given)})",
        )
    if cfg.aspect_ratio:
        ctx.add("config.aspect_ratio", _follows(ctx, name, how_it_follows(TaskType.INPAINTING)))
    return OutputSize(*size, size_problem(ctx.limits, size) is None)


def _forbid_size(ctx: Context, cfg: _Cfg, name: str, how: str) -> None:
    for field in ("width", "height"):
        if cfg.HasField(field):
            ctx.add(f"config.{field}", _follows(ctx, name, how))
    if cfg.aspect_ratio:
        ctx.add("config.aspect_ratio", _follows(ctx, name, how))


def _follows(ctx: Context, name: str, how: str) -> str:
    return (
        f"must not be set for {name} on {ctx.model_id}: the output follows the input image ({how})"
    )


def _aspect_ratio_size(ctx: Context, cfg: _Cfg) -> OutputSize:
    """ASPECT_RATIO: `aspect_ratio`, or a width/height pair from the model's table."""
    table = ctx.limits.aspect_ratios
    ratio: str | None = cfg.aspect_ratio or None
    if ratio is not None and ratio not in table:
        ctx.add(
            "config.aspect_ratio",
            f"must be one of {', '.join(table)} for {ctx.model_id} (got {show(ratio)})",
        )
        ratio = None
    given = _given_size(ctx, cfg)
    if given is not None:
        ratio = _ratio_of_size(ctx, given, ratio)
    ratio = ratio or (DEFAULT_RATIO if DEFAULT_RATIO in table else next(iter(table), None))
    if ratio is None:  # an empty table: a registry mistake, nothing to choose from
        return OutputSize(*DEFAULT_SIZE, False)
    return OutputSize(*table[ratio], False, ratio)


def _ratio_of_size(ctx: Context, size: Size, ratio: str | None) -> str | None:
    """The ratio of a width/height pair from the table; it must agree with `ratio`."""
    table = ctx.limits.aspect_ratios
    found = ratio_of(table, size)
    if found is None:
        sizes = ", ".join(f"{fmt(entry)} ({r})" for r, entry in table.items())
        ctx.add(
            "config.width",
            f"must be one of the sizes of {ctx.model_id}: {sizes}; or give config.aspect_ratio "
            f"instead (got {fmt(size)})",
        )
        return ratio
    if ratio is not None and found != ratio:
        ctx.add(
            "config.aspect_ratio",
            f"must agree with config.width and config.height: {fmt(size)} is {found} "
            f"(got {show(ratio)})",
        )
    return found


def _given_size(ctx: Context, cfg: _Cfg) -> Size | None:
    """The requested (width, height); None if neither is given."""
    has_width, has_height = cfg.HasField("width"), cfg.HasField("height")
    if has_width and has_height:
        return cfg.width, cfg.height
    if has_width:
        ctx.add("config.height", "is required when config.width is given")
    elif has_height:
        ctx.add("config.width", "is required when config.height is given")
    return None


def size_problem(limits: ModelLimits, size: Size) -> str | None:
    """Why `size` is not a legal TITAN / NOVA output size for the model, or None."""
    if limits.sizes is not None:
        if size in limits.sizes:
            return None
        return f"must be one of the Titan sizes, e.g. 1024x1024, 512x512 (got {fmt(size)})"
    problem = nova_size_problem(*size)
    return None if problem is None else f"{problem} (got {fmt(size)})"
