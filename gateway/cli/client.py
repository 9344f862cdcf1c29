"""Client commands: one per original Titan task, streaming images to a folder.
The newer task commands and `models` are in `gateway.cli.tasks`, built on the
helpers here.

Each command builds a GenerateImagesRequest, shows a progress bar on stderr
as images arrive and writes each image to `--out` as
`<request id>-<index>.<png|jpg|webp>` (and a returned mask beside it as
`<request id>-<index>-mask.png`), printing every written path on stdout, or
with `--json` every event as a JSON line (see `gateway.cli.streaming`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from gateway.cli.output import print_rpc_error
from gateway.cli.streaming import consume as _consume
from gateway.client import DEFAULT_TARGET, TLS, AsyncGatewayClient, ClientError
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks

# The demo keys of policies/examples/dev.yaml, so `make run` + the CLI work
# out of the box; set TITAN_GW_API_KEY / TITAN_GW_ADMIN_KEY for anything else.
DEV_API_KEY = "tgw_dev_key"
DEV_ADMIN_KEY = "tgw_dev_admin_key"
QUALITIES = {"standard": tasks.QUALITY_STANDARD, "premium": tasks.QUALITY_PREMIUM}
FORMATS = {"png": tasks.OUTPUT_FORMAT_PNG, "jpeg": tasks.OUTPUT_FORMAT_JPEG,
           "webp": tasks.OUTPUT_FORMAT_WEBP}  # fmt: skip
CONTROL_MODES = {
    "canny_edge": tasks.CONTROL_MODE_CANNY_EDGE,
    "segmentation": tasks.CONTROL_MODE_SEGMENTATION,
    "sketch": tasks.CONTROL_MODE_SKETCH,
    "structure": tasks.CONTROL_MODE_STRUCTURE,
}
OUTPAINTING_MODES = {
    "default": tasks.OUTPAINTING_MODE_DEFAULT,
    "precise": tasks.OUTPAINTING_MODE_PRECISE,
}
Builder = Callable[[argparse.Namespace], pb.GenerateImagesRequest]


class UsageError(Exception):
    """Options that make no request (the gateway validates everything else)."""


@dataclass(frozen=True)
class Command:
    """One task command: its name, help, arguments and request builder."""

    name: str
    help: str
    build: Builder
    add_args: Callable[[argparse.ArgumentParser], None]
    with_config: bool = True


def register_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: list[Command],
    *,
    with_out: bool = True,
) -> None:
    """Add each command with the common options (`--out` unless `with_out` is
    false); the request is `args.build(args)`. `run_client_command` runs them
    unless the caller sets another `run` default."""
    for command in commands:
        cmd = sub.add_parser(command.name, help=command.help)
        command.add_args(cmd)
        _add_common(cmd, with_config=command.with_config, with_out=with_out)
        cmd.set_defaults(build=command.build)


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register generate, inpaint, outpaint, vary, remove-bg and color."""
    register_commands(sub, COMMANDS)


def run_client_command(args: argparse.Namespace) -> int:
    """Send the request the command describes; 0 if every image arrived."""
    try:
        request = args.build(args)
        _make_folder(args.out)
    except (OSError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_stream(args, request))


def _make_folder(out: Path) -> None:
    """`--out` as a folder, made if missing; UsageError if it cannot be one."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make the folder --out {out}: {exc.strerror}") from None


def tenant_key(args: argparse.Namespace) -> str | None:
    """--api-key (or TITAN_GW_API_KEY); else the dev key, unless a client
    certificate is to identify the tenant (a key would win over it)."""
    if args.api_key:
        return str(args.api_key)
    return None if getattr(args, "tls_cert", None) else DEV_API_KEY


def connect(args: argparse.Namespace) -> AsyncGatewayClient:
    """A client of --target with the command's key, --timeout and TLS options."""
    return AsyncGatewayClient(
        args.target,
        api_key=tenant_key(args) if hasattr(args, "api_key") else None,
        admin_key=getattr(args, "admin_key", None),
        tls=_tls(args),
        timeout=args.timeout,
    )


def _tls(args: argparse.Namespace) -> TLS | None:
    """Plaintext, or TLS with --tls-ca / --tls-cert / --tls-key."""
    ca, cert, key = args.tls_ca, args.tls_cert, args.tls_key
    if (cert is None) != (key is None):
        _fail("--tls-cert and --tls-key go together (env TITAN_GW_TLS_CERT, TITAN_GW_TLS_KEY)")
    if ca is None and cert is None:
        return None
    return TLS(ca=_read(ca, "--tls-ca"), key=_read(key, "--tls-key"),
               cert=_read(cert, "--tls-cert"))  # fmt: skip


def _read(path: Path | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        _fail(f"{flag} {path}: {exc.strerror or exc}")


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


async def _stream(args: argparse.Namespace, request: pb.GenerateImagesRequest) -> int:
    async with connect(args) as gateway, aclosing(gateway.generate(request)) as events:
        try:
            return await _consume(events, args.out, as_json=args.json)
        except ClientError as err:
            print_rpc_error(err, args.target)
            return 2
        except OSError as exc:  # writing an image: disk full, permissions
            print(f"error: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 2


def add_target(cmd: argparse.ArgumentParser) -> None:
    """--target, --timeout and --json, which every command talking to the gateway has."""
    target = os.environ.get("TITAN_GW_TARGET", DEFAULT_TARGET)
    cmd.add_argument("--target", default=target, help="gateway address (env TITAN_GW_TARGET)")
    cmd.add_argument("--timeout", type=float, default=300.0, help="deadline in seconds")
    json_help = "print the response as JSON (one object per line for streams)"
    cmd.add_argument("--json", action="store_true", help=json_help)
    env = os.environ.get
    tls = cmd.add_argument_group("TLS (default: plaintext)")
    tls.add_argument(
        "--tls-ca",
        type=Path,
        default=env("TITAN_GW_TLS_CA"),
        help="CA bundle (PEM) to verify the gateway with (env TITAN_GW_TLS_CA)",
    )
    tls.add_argument(
        "--tls-cert",
        type=Path,
        default=env("TITAN_GW_TLS_CERT"),
        help="client certificate chain (PEM) for mutual TLS; without --api-key the "
        "certificate identifies the tenant (env TITAN_GW_TLS_CERT)",
    )
    tls.add_argument("--tls-key", type=Path, default=env("TITAN_GW_TLS_KEY"),
                     help="its private key (env TITAN_GW_TLS_KEY)")  # fmt: skip


def add_api_key(cmd: argparse.ArgumentParser) -> None:
    """--api-key: the tenant's key."""
    key = os.environ.get("TITAN_GW_API_KEY")
    help_ = "tenant API key (env TITAN_GW_API_KEY; default: the dev key, or none with --tls-cert)"
    cmd.add_argument("--api-key", default=key, help=help_)


def add_admin_key(cmd: argparse.ArgumentParser) -> None:
    """--admin-key: an operator's key."""
    key = os.environ.get("TITAN_GW_ADMIN_KEY", DEV_ADMIN_KEY)
    cmd.add_argument("--admin-key", default=key, help="admin key (env TITAN_GW_ADMIN_KEY)")


def _add_common(cmd: argparse.ArgumentParser, *, with_config: bool, with_out: bool) -> None:
    add_target(cmd)
    add_api_key(cmd)
    if with_out:
        cmd.add_argument("--out", type=Path, default=Path("out"), help="folder for the images")
    cmd.add_argument("--model", default="", help="Bedrock model id (default: the gateway's)")
    cmd.add_argument("--request-id", default="", help="client request id")
    if not with_config:
        return
    cmd.add_argument("-n", "--count", type=int, help="number of images, 1-5")
    cmd.add_argument("--width", type=int)
    cmd.add_argument("--height", type=int)
    cmd.add_argument("--aspect-ratio", default="", help='e.g. "16:9" (Stability models)')
    cmd.add_argument("--quality", choices=sorted(QUALITIES))
    cmd.add_argument("--format", dest="output_format", choices=list(FORMATS), help="default png")
    cmd.add_argument("--seed", type=int)
    cmd.add_argument("--cfg-scale", type=float)


def _config(args: argparse.Namespace) -> tasks.ImageGenerationConfig:
    config = tasks.ImageGenerationConfig(aspect_ratio=args.aspect_ratio)
    for field, value in (("number_of_images", args.count), ("width", args.width),
                         ("height", args.height), ("seed", args.seed),
                         ("cfg_scale", args.cfg_scale)):  # fmt: skip
        if value is not None:
            setattr(config, field, value)
    if args.quality:
        config.quality = QUALITIES[args.quality]
    if args.output_format:
        config.output_format = FORMATS[args.output_format]
    return config


def request(args: argparse.Namespace, **task: Any) -> pb.GenerateImagesRequest:
    """The request for one task message, with the common options applied."""
    req = pb.GenerateImagesRequest(model_id=args.model, client_request_id=args.request_id, **task)
    if hasattr(args, "count"):
        req.config.CopyFrom(_config(args))
    return req


def read(path: Path | None) -> bytes:
    """The file's bytes; empty for no file."""
    return path.read_bytes() if path else b""


def given(**fields: Any) -> dict[str, Any]:
    """The fields whose option was given (for `optional` proto fields)."""
    return {name: value for name, value in fields.items() if value is not None}


def _mask_args(cmd: argparse.ArgumentParser, verb: str, *, no_mask: bool = False) -> None:
    cmd.add_argument("--image", type=Path, required=True, help="image to edit (PNG/JPEG)")
    mask = cmd.add_mutually_exclusive_group(required=True)
    mask.add_argument("--mask-prompt", help=f"describe the region to {verb}")
    mask.add_argument("--mask-image", type=Path, help=f"black = region to {verb}")
    if no_mask:
        help_text = "no mask: the image's transparent pixels are the region (Stability Inpaint)"
        mask.add_argument("--no-mask", action="store_true", help=help_text)
    cmd.add_argument("--negative", default="", help="what not to draw")
    cmd.add_argument("--return-mask", action="store_true", help="also write the mask used")


def _generate_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt")
    cmd.add_argument("--negative", default="", help="what not to draw")
    cmd.add_argument("--style", default="", help="style name (Nova) or preset (Stability)")
    cmd.add_argument("--condition-image", type=Path, help="reference image to follow")
    cmd.add_argument("--control-mode", choices=sorted(CONTROL_MODES))
    cmd.add_argument("--control-strength", type=float)


def _build_generate(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.TextToImageTask(text=args.prompt, negative_text=args.negative, style=args.style)
    if args.condition_image:
        task.conditioning.condition_image = read(args.condition_image)
        if args.control_mode:
            task.conditioning.control_mode = CONTROL_MODES[args.control_mode]
        if args.control_strength is not None:
            task.conditioning.control_strength = args.control_strength
    elif args.control_mode or args.control_strength is not None:
        raise UsageError("--control-mode and --control-strength need --condition-image")
    return request(args, text_to_image=task)


def _inpaint_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", nargs="?", default="", help="what to paint (optional)")
    _mask_args(cmd, "replace", no_mask=True)
    cmd.add_argument("--grow-mask", type=int, help="grow the mask by 0-20 px (Stability)")
    cmd.add_argument("--style", default="", help="style preset (Stability)")


def _build_inpaint(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.InpaintingTask(
        image=read(args.image),
        text=args.prompt,
        negative_text=args.negative,
        return_mask=args.return_mask,
        style=args.style,
        **given(grow_mask=args.grow_mask),
    )
    _set_mask(task, args)
    return request(args, inpainting=task)


def _outpaint_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", help="what to paint around the kept region")
    _mask_args(cmd, "keep")
    cmd.add_argument("--mode", choices=sorted(OUTPAINTING_MODES), default="default")


def _build_outpaint(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.OutpaintingTask(
        image=read(args.image),
        text=args.prompt,
        negative_text=args.negative,
        mode=OUTPAINTING_MODES[args.mode],
        return_mask=args.return_mask,
    )
    _set_mask(task, args)
    return request(args, outpainting=task)


def _set_mask(task: tasks.InpaintingTask | tasks.OutpaintingTask, args: argparse.Namespace) -> None:
    if args.mask_prompt is not None:
        task.mask_prompt = args.mask_prompt
    elif args.mask_image is not None:
        task.mask_image = read(args.mask_image)
    # else --no-mask: neither is set, and the image's alpha marks the region.


def _vary_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", nargs="?", default="", help="optional prompt")
    cmd.add_argument("--image", type=Path, action="append", required=True, help="1-5 images")
    cmd.add_argument("--similarity", type=float, help="0.2-1.0, default 0.7")
    cmd.add_argument("--negative", default="", help="what not to draw")


def _build_vary(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.ImageVariationTask(
        images=[read(p) for p in args.image],
        text=args.prompt,
        negative_text=args.negative,
        **given(similarity_strength=args.similarity),
    )
    return request(args, image_variation=task)


def _remove_bg_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--image", type=Path, required=True, help="image (PNG/JPEG)")


def _build_remove_bg(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    return request(args, background_removal=tasks.BackgroundRemovalTask(image=read(args.image)))


def _color_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt")
    cmd.add_argument("--color", action="append", required=True, help="#RRGGBB, 1-10 times")
    cmd.add_argument("--reference-image", type=Path)
    cmd.add_argument("--negative", default="", help="what not to draw")


def _build_color(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.ColorGuidedGenerationTask(
        text=args.prompt,
        negative_text=args.negative,
        colors=args.color,
        reference_image=read(args.reference_image),
    )
    return request(args, color_guided_generation=task)


COMMANDS = [
    Command("generate", "text to image (optionally conditioned)", _build_generate, _generate_args),
    Command("inpaint", "replace a masked region", _build_inpaint, _inpaint_args),
    Command(
        "outpaint", "keep a masked region, regenerate the rest", _build_outpaint, _outpaint_args
    ),
    Command("vary", "variations of 1-5 images", _build_vary, _vary_args),
    Command("remove-bg", "transparent background", _build_remove_bg, _remove_bg_args, False),
    Command("color", "colour-guided generation", _build_color, _color_args),
]
