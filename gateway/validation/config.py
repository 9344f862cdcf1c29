"""`config` (ImageGenerationConfig) → `ImageConfig`, with the family's defaults.

Output size:
- text-to-image, image variation, colour-guided: from config, default 1024x1024;
  Titan families need one of TITAN_SIZES, Nova Canvas its resolution rules.
- inpainting, outpainting: the input image's size. Families that forbid a size
  for edits (Nova) must not be given one. Titan may be given one, but it must
  equal the input's size; the size is sent to Bedrock only when it is a legal
  Titan output size, because Bedrock would refuse e.g. 500x500 in
  imageGenerationConfig while it accepts (and keeps) a 500x500 input.
- background removal: the input's size; Bedrock takes no imageGenerationConfig,
  so config is ignored except that it cannot ask for more than one image.
"""

from __future__ import annotations

from gateway.domain import ImageConfig, InputImage
from gateway.enums import Quality
from gateway.models import (
    DEFAULT_SIZE,
    MAX_CFG_SCALE,
    MAX_IMAGES,
    MAX_SEED,
    MIN_CFG_SCALE,
    FamilyLimits,
    nova_size_problem,
)
from gateway.validation.fields import bounded_float, bounded_int, enum_value
from gateway.validation.violations import Context
from titan.gateway.v1 import tasks_pb2

EDIT_TASKS = frozenset({"inpainting", "outpainting"})
BACKGROUND_REMOVAL = "background_removal"
_QUALITIES: dict[int, Quality] = {
    tasks_pb2.QUALITY_STANDARD: Quality.STANDARD,
    tasks_pb2.QUALITY_PREMIUM: Quality.PREMIUM,
}
_Size = tuple[int, int]


def decode_config(
    ctx: Context, cfg: tasks_pb2.ImageGenerationConfig, task: str, source: InputImage | None
) -> ImageConfig:
    """The output settings for task `task` (the oneof name); `source` is the edited image."""
    if task == BACKGROUND_REMOVAL:
        return _background_removal(ctx, cfg, source)
    count = _count(ctx, cfg)
    width, height, send_size = _output_size(ctx, cfg, task, source)
    return ImageConfig(
        count=count,
        width=width,
        height=height,
        cfg_scale=_cfg_scale(ctx, cfg),
        seed=_seed(ctx, cfg, count),
        quality=enum_value(ctx, "config.quality", cfg.quality, _QUALITIES) or Quality.STANDARD,
        send_size=send_size,
    )


def _background_removal(
    ctx: Context, cfg: tasks_pb2.ImageGenerationConfig, source: InputImage | None
) -> ImageConfig:
    if cfg.HasField("number_of_images") and cfg.number_of_images != 1:
        got = cfg.number_of_images
        ctx.add("config.number_of_images", f"background removal returns one image (got {got})")
    width, height = _size_of(source)
    limits = ctx.limits
    return ImageConfig(
        count=1,
        width=width,
        height=height,
        cfg_scale=limits.default_cfg_scale,
        seed=limits.default_seed,
        quality=Quality.STANDARD,
        send_size=False,
    )


def _count(ctx: Context, cfg: tasks_pb2.ImageGenerationConfig) -> int:
    if not cfg.HasField("number_of_images"):
        return 1
    count = cfg.number_of_images
    return count if bounded_int(ctx, "config.number_of_images", count, 1, MAX_IMAGES) else 1


def _cfg_scale(ctx: Context, cfg: tasks_pb2.ImageGenerationConfig) -> float:
    if not cfg.HasField("cfg_scale"):
        return ctx.limits.default_cfg_scale
    return bounded_float(ctx, "config.cfg_scale", cfg.cfg_scale, MIN_CFG_SCALE, MAX_CFG_SCALE)


def _seed(ctx: Context, cfg: tasks_pb2.ImageGenerationConfig, count: int) -> int:
    if not cfg.HasField("seed"):
        return ctx.limits.default_seed
    seed = cfg.seed
    if bounded_int(ctx, "config.seed", seed, 0, MAX_SEED) and seed + count - 1 > MAX_SEED:
        ctx.add(
            "config.seed",
            f"must be at most {MAX_SEED - count + 1} for {count} images, because image i "
            f"uses seed + i and seeds go up to {MAX_SEED} (got {seed})",
        )
    return seed


def _output_size(
    ctx: Context, cfg: tasks_pb2.ImageGenerationConfig, task: str, source: InputImage | None
) -> tuple[int, int, bool]:
    if task in EDIT_TASKS:
        return _edit_size(ctx, cfg, task, source)
    given = _given_size(ctx, cfg)
    if given is None:
        return (*DEFAULT_SIZE, True)
    problem = size_problem(ctx.limits, given)
    if problem:
        ctx.add("config.width", problem)
    return (*given, True)


def _edit_size(
    ctx: Context, cfg: tasks_pb2.ImageGenerationConfig, task: str, source: InputImage | None
) -> tuple[int, int, bool]:
    limits = ctx.limits
    if not limits.edit_size_allowed:
        _forbid_size(ctx, cfg, task)
    else:
        given = _given_size(ctx, cfg)
        size = None if source is None else _size_of(source)
        if given is not None and size is not None and given != size:
            ctx.add(
                "config.width",
                f"must match {task}.image's size ({_fmt(size)}) because {task} keeps "
                f"the input's size (got {_fmt(given)})",
            )
    width, height = _size_of(source)
    send = limits.edit_size_allowed and size_problem(limits, (width, height)) is None
    return width, height, send


def _forbid_size(ctx: Context, cfg: tasks_pb2.ImageGenerationConfig, task: str) -> None:
    for name in ("width", "height"):
        if cfg.HasField(name):
            ctx.add(
                f"config.{name}",
                f"must not be set for {task} on {ctx.model_id}: "
                "the output has the input image's size",
            )


def _given_size(ctx: Context, cfg: tasks_pb2.ImageGenerationConfig) -> _Size | None:
    """The requested (width, height); None if neither is given."""
    has_width, has_height = cfg.HasField("width"), cfg.HasField("height")
    if has_width and has_height:
        return cfg.width, cfg.height
    if has_width:
        ctx.add("config.height", "is required when config.width is given")
    elif has_height:
        ctx.add("config.width", "is required when config.height is given")
    return None


def size_problem(limits: FamilyLimits, size: _Size) -> str | None:
    """Why `size` is not a legal output size for the family, or None."""
    if limits.sizes is not None:
        if size in limits.sizes:
            return None
        return f"must be one of the Titan sizes, e.g. 1024x1024, 512x512 (got {_fmt(size)})"
    problem = nova_size_problem(*size)
    return None if problem is None else f"{problem} (got {_fmt(size)})"


def _size_of(image: InputImage | None) -> _Size:
    # Only reached without an image when a violation is already recorded.
    return DEFAULT_SIZE if image is None else (image.width, image.height)


def _fmt(size: _Size) -> str:
    return f"{size[0]}x{size[1]}"
