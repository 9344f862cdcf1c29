"""Commands for the tasks beyond Titan's original six (the Stability Image
Services, SD3.5/Ultra image to image, Nova Canvas virtual try-on), and
`models`, the gateway's model registry.

python -m gateway img2img "a watercolour fox" --image in.png --strength 0.6
python -m gateway upscale --mode creative --image small.png "a red fox" --style anime
python -m gateway erase --image in.png --mask-image mask.png
python -m gateway models

Every task command streams like the original ones (see `gateway.cli.client`):
images under `--out`, their paths on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.cli.client import (
    Command,
    UsageError,
    add_admin_key,
    add_target,
    given,
    read,
    register_commands,
    request,
)
from gateway.cli.ops import call
from gateway.cli.output import print_json, print_table
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks

UPSCALE_MODES = ("fast", "conservative", "creative")
TRY_ON_MASK_TYPES = {
    "garment": tasks.TRY_ON_MASK_TYPE_GARMENT,
    "image": tasks.TRY_ON_MASK_TYPE_IMAGE,
    "prompt": tasks.TRY_ON_MASK_TYPE_PROMPT,
}


def add_task_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register img2img, upscale, replace, recolor, erase, expand, style-guide,
    style-transfer and try-on (run by `run_client_command`)."""
    register_commands(sub, COMMANDS)


def _image(cmd: argparse.ArgumentParser, help_text: str = "input image (PNG/JPEG/WebP)") -> None:
    cmd.add_argument("--image", type=Path, required=True, help=help_text)


def _negative(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--negative", default="", help="what not to draw")


def _style(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--style", default="", help="Stability style preset, e.g. photographic")


def _grow_mask(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--grow-mask", type=int, help="grow the region's edges by 0-20 px")


def _img2img_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt")
    _image(cmd)
    cmd.add_argument("--strength", type=float, help="0-1: how far from the input, default 0.35")
    _negative(cmd)


def _build_img2img(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.ImageToImageTask(
        image=read(args.image),
        text=args.prompt,
        negative_text=args.negative,
        **given(strength=args.strength),
    )
    return request(args, image_to_image=task)


def _upscale_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", nargs="?", default="", help="what the image shows (not fast)")
    cmd.add_argument("--mode", choices=UPSCALE_MODES, required=True)
    _image(cmd)
    cmd.add_argument("--creativity", type=float, help="new detail: conservative 0.2-0.5, "
                     "creative 0.1-0.5")  # fmt: skip
    _style(cmd)
    _negative(cmd)


def _build_upscale(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    image = read(args.image)
    if args.mode == "fast":
        extras = [args.prompt, args.creativity is not None, args.style, args.negative]
        if any(extras):
            raise UsageError("--mode fast takes no prompt, --creativity, --style or --negative")
        return request(args, fast_upscale=tasks.FastUpscaleTask(image=image))
    fields: dict[str, Any] = dict(
        image=image, text=args.prompt, negative_text=args.negative,
        **given(creativity=args.creativity),
    )  # fmt: skip
    if args.mode == "conservative":
        if args.style:
            raise UsageError("--mode conservative takes no --style")
        return request(args, conservative_upscale=tasks.ConservativeUpscaleTask(**fields))
    return request(args, creative_upscale=tasks.CreativeUpscaleTask(style=args.style, **fields))


def _replace_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", help="what to put in its place")
    _image(cmd)
    cmd.add_argument("--search", required=True, help='what to find, e.g. "the dog"')
    _grow_mask(cmd)
    _style(cmd)
    _negative(cmd)


def _build_replace(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.SearchAndReplaceTask(
        image=read(args.image),
        search_prompt=args.search,
        text=args.prompt,
        negative_text=args.negative,
        style=args.style,
        **given(grow_mask=args.grow_mask),
    )
    return request(args, search_and_replace=task)


def _recolor_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", help='the new colours, e.g. "a red jacket"')
    _image(cmd)
    cmd.add_argument("--select", required=True, help='what to find, e.g. "the jacket"')
    _grow_mask(cmd)
    _style(cmd)
    _negative(cmd)


def _build_recolor(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.SearchAndRecolorTask(
        image=read(args.image),
        select_prompt=args.select,
        text=args.prompt,
        negative_text=args.negative,
        style=args.style,
        **given(grow_mask=args.grow_mask),
    )
    return request(args, search_and_recolor=task)


def _erase_args(cmd: argparse.ArgumentParser) -> None:
    _image(cmd)
    cmd.add_argument("--mask-image", type=Path,
                     help="black = erase (default: the image's transparent pixels)")  # fmt: skip
    _grow_mask(cmd)


def _build_erase(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.EraseObjectTask(
        image=read(args.image), mask_image=read(args.mask_image), **given(grow_mask=args.grow_mask)
    )
    return request(args, erase_object=task)


def _expand_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", nargs="?", default="", help="what to paint in the new area")
    _image(cmd)
    for side in ("left", "right", "up", "down"):
        cmd.add_argument(f"--{side}", type=int, default=0, help=f"pixels to add {side}, 0-2000")
    cmd.add_argument("--creativity", type=float, help="0.1-1.0, default 0.5")
    _style(cmd)


def _build_expand(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.ExpandCanvasTask(
        image=read(args.image),
        left=args.left,
        right=args.right,
        up=args.up,
        down=args.down,
        text=args.prompt,
        style=args.style,
        **given(creativity=args.creativity),
    )
    return request(args, expand_canvas=task)


def _style_guide_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt")
    _image(cmd, "guide image whose style to follow")
    cmd.add_argument("--fidelity", type=float, help="0-1: how closely, default 0.5")
    _style(cmd)
    _negative(cmd)


def _build_style_guide(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.StyleGuideTask(
        image=read(args.image),
        text=args.prompt,
        negative_text=args.negative,
        style=args.style,
        **given(fidelity=args.fidelity),
    )
    return request(args, style_guide=task)


def _style_transfer_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", nargs="?", default="", help="optional prompt")
    _image(cmd, "image to restyle")
    cmd.add_argument("--style-image", type=Path, required=True, help="image whose style to apply")
    cmd.add_argument("--style-strength", type=float, help="0-1, default 1.0")
    cmd.add_argument("--composition-fidelity", type=float, help="0-1, default 0.9")
    cmd.add_argument("--change-strength", type=float, help="0.1-1, default 0.9")
    _negative(cmd)


def _build_style_transfer(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.StyleTransferTask(
        image=read(args.image),
        style_image=read(args.style_image),
        text=args.prompt,
        negative_text=args.negative,
        **given(
            style_strength=args.style_strength,
            composition_fidelity=args.composition_fidelity,
            change_strength=args.change_strength,
        ),
    )
    return request(args, style_transfer=task)


def _try_on_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--source", type=Path, required=True, help="photo of the person")
    cmd.add_argument("--garment", type=Path, required=True, help="photo of the garment")
    cmd.add_argument("--garment-class", default="", help="e.g. UPPER_BODY (mask type garment)")
    cmd.add_argument("--mask-type", choices=list(TRY_ON_MASK_TYPES),
                     help="default: image with --mask-image, prompt with --mask-prompt, "
                     "else garment")  # fmt: skip
    cmd.add_argument("--mask-image", type=Path, help="black = where the garment goes")
    cmd.add_argument("--mask-prompt", default="", help='the region, e.g. "the jacket"')
    cmd.add_argument("--return-mask", action="store_true", help="also write the mask used")


def _build_try_on(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    mask_type = args.mask_type or (
        "image" if args.mask_image else "prompt" if args.mask_prompt else "garment"
    )
    needs = {"garment": args.garment_class, "image": args.mask_image, "prompt": args.mask_prompt}
    if not needs[mask_type]:
        option = {"garment": "--garment-class", "image": "--mask-image", "prompt": "--mask-prompt"}
        raise UsageError(f"--mask-type {mask_type} needs {option[mask_type]}")
    task = tasks.VirtualTryOnTask(
        source_image=read(args.source),
        reference_image=read(args.garment),
        mask_type=TRY_ON_MASK_TYPES[mask_type],
        garment_class=args.garment_class,
        mask_image=read(args.mask_image),
        mask_prompt=args.mask_prompt,
        return_mask=args.return_mask,
    )
    return request(args, virtual_try_on=task)


COMMANDS = [
    Command("img2img", "image to image (SD3.5 Large, Ultra)", _build_img2img, _img2img_args),
    Command("upscale", "upscale: fast 4x, conservative, creative", _build_upscale, _upscale_args),
    Command("replace", "search and replace an object", _build_replace, _replace_args),
    Command("recolor", "search and recolour an object", _build_recolor, _recolor_args),
    Command("erase", "erase the masked object", _build_erase, _erase_args),
    Command("expand", "add pixels on the sides", _build_expand, _expand_args),
    Command("style-guide", "generate in an image's style", _build_style_guide, _style_guide_args),
    Command(
        "style-transfer", "restyle after a style image", _build_style_transfer, _style_transfer_args
    ),
    Command("try-on", "dress a person in a garment (Nova Canvas)", _build_try_on, _try_on_args),
]


# ------------------------------------------------------------------ models


def add_models_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `models`: the gateway's model registry (an admin call)."""
    cmd = sub.add_parser("models", help="list the gateway's models (admin key)")
    add_target(cmd)
    add_admin_key(cmd)


def run_models_command(args: argparse.Namespace) -> int:
    """Print AdminService.ListModels as a table (or JSON); 2 on an RPC error."""
    response = call(args, lambda gateway: gateway.models())
    if response is None:
        return 2
    if args.json:
        print_json(response)
        return 0
    header = ("ID", "DIALECT", "TASKS", "PRICE (USD)", "LIFECYCLE", "DEFAULT FOR")
    print_table(header, [_model_row(m) for m in response.models])
    return 0


def _model_row(model: admin_pb.ModelInfo) -> tuple[str, ...]:
    life = model.lifecycle
    if model.eol_date:
        life += f" since {model.eol_date}" if life == "eol" else f", EOL {model.eol_date}"
    if model.replacement:
        life += f" -> {model.replacement}"
    if model.extended_access:
        life += ", extended access"
    price = f"{model.price_micros / 1_000_000:.3f}"
    defaults = _task_names(model.default_for) or "-"
    return (model.model_id, model.dialect, _task_names(model.tasks), price, life, defaults)


def _task_names(types: Any) -> str:
    return ",".join(tasks.TaskType.Name(t).removeprefix("TASK_TYPE_").lower() for t in types)
