"""Client commands: one per Titan task, streaming images to a folder.

Each command builds a GenerateImagesRequest, shows a progress bar as images
arrive and writes each image to `--out` as `<request id>-<index>.png`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from tqdm import tqdm

from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

DEFAULT_TARGET = "127.0.0.1:50051"
# The demo tenant key of policies/examples/dev.yaml, so `make run` + the CLI
# work out of the box; set TITAN_GW_API_KEY or --api-key for anything else.
DEV_API_KEY = "tgw_dev_key"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
QUALITIES = {"standard": tasks.QUALITY_STANDARD, "premium": tasks.QUALITY_PREMIUM}
CONTROL_MODES = {
    "canny_edge": tasks.CONTROL_MODE_CANNY_EDGE,
    "segmentation": tasks.CONTROL_MODE_SEGMENTATION,
}
OUTPAINTING_MODES = {
    "default": tasks.OUTPAINTING_MODE_DEFAULT,
    "precise": tasks.OUTPAINTING_MODE_PRECISE,
}
Builder = Callable[[argparse.Namespace], pb.GenerateImagesRequest]


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register generate, inpaint, outpaint, vary, remove-bg and color."""
    for name, help_text, build, add_args in _COMMANDS:
        cmd = sub.add_parser(name, help=help_text)
        add_args(cmd)
        _add_common(cmd, with_config=name != "remove-bg")
        cmd.set_defaults(build=build)


def run_client_command(args: argparse.Namespace) -> int:
    """Send the request the command describes; 0 if every image arrived."""
    try:
        request = args.build(args)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_stream(args, request))


async def _stream(args: argparse.Namespace, request: pb.GenerateImagesRequest) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]  # fmt: skip
    async with grpc.aio.insecure_channel(args.target, options=options) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            metadata = (("authorization", f"Bearer {args.api_key}"),)
            call = stub.GenerateImages(request, timeout=args.timeout, metadata=metadata)
            return await _consume(call, args.out)
        except grpc.aio.AioRpcError as err:
            _print_rpc_error(err)
            return 2


async def _consume(call: grpc.aio.UnaryStreamCall, out: Path) -> int:
    """Write each image as it arrives; 1 if any image failed."""
    bar: tqdm | None = None
    prefix, failed = "image", 0
    try:
        async for event in call:
            kind = event.WhichOneof("event")
            if kind == "accepted":
                prefix = event.accepted.request_id[:8]
                bar = tqdm(
                    total=event.accepted.image_count,
                    unit="img",
                    desc=event.accepted.model_id,
                    file=sys.stderr,
                )
            elif kind == "image":
                path = out / f"{prefix}-{event.image.index}.png"
                path.write_bytes(event.image.data)
                _advance(bar, f"wrote {path} ({event.image.width}x{event.image.height})")
            elif kind == "image_failed":
                failed += 1
                fail = event.image_failed
                reason = pb.FailureReason.Name(fail.reason)
                _advance(bar, f"image {fail.index} failed: {reason}: {fail.message}")
            elif kind == "completed":
                _summary(bar, event.completed)
    finally:
        if bar is not None:
            bar.close()
    return 1 if failed else 0


def _summary(bar: tqdm | None, done: pb.Completed) -> None:
    cost = f"${done.cost_micros / 1_000_000:.6f}".rstrip("0").rstrip(".")
    note = " (replayed: nothing generated or charged again)" if done.replayed else ""
    message = f"{done.images_delivered} delivered, {done.images_failed} failed, cost {cost}{note}"
    if bar is None:
        print(message, file=sys.stderr)
    else:
        bar.write(message, file=sys.stderr)


def _advance(bar: tqdm | None, message: str) -> None:
    if bar is None:
        print(message, file=sys.stderr)
        return
    bar.write(message, file=sys.stderr)
    bar.update(1)


def _print_rpc_error(err: grpc.aio.AioRpcError) -> None:
    print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
    status = rpc_status.from_call(err)
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            for v in bad.field_violations:
                print(f"  {v.field}: {v.description}", file=sys.stderr)


def _add_common(cmd: argparse.ArgumentParser, *, with_config: bool) -> None:
    target = os.environ.get("TITAN_GW_TARGET", DEFAULT_TARGET)
    cmd.add_argument("--target", default=target, help="gateway address (env TITAN_GW_TARGET)")
    key = os.environ.get("TITAN_GW_API_KEY", DEV_API_KEY)
    cmd.add_argument("--api-key", default=key, help="tenant API key (env TITAN_GW_API_KEY)")
    cmd.add_argument("--out", type=Path, default=Path("out"), help="folder for the images")
    cmd.add_argument("--model", default="", help="Bedrock model id (default: the gateway's)")
    cmd.add_argument("--request-id", default="", help="client request id")
    cmd.add_argument("--timeout", type=float, default=300.0, help="deadline in seconds")
    if not with_config:
        return
    cmd.add_argument("-n", "--count", type=int, help="number of images, 1-5")
    cmd.add_argument("--width", type=int)
    cmd.add_argument("--height", type=int)
    cmd.add_argument("--quality", choices=sorted(QUALITIES))
    cmd.add_argument("--seed", type=int)
    cmd.add_argument("--cfg-scale", type=float)


def _config(args: argparse.Namespace) -> tasks.ImageGenerationConfig:
    config = tasks.ImageGenerationConfig()
    for field, value in (("number_of_images", args.count), ("width", args.width),
                         ("height", args.height), ("seed", args.seed),
                         ("cfg_scale", args.cfg_scale)):  # fmt: skip
        if value is not None:
            setattr(config, field, value)
    if args.quality:
        config.quality = QUALITIES[args.quality]
    return config


def _request(args: argparse.Namespace, **task: Any) -> pb.GenerateImagesRequest:
    request = pb.GenerateImagesRequest(
        model_id=args.model, client_request_id=args.request_id, **task
    )
    if hasattr(args, "count"):
        request.config.CopyFrom(_config(args))
    return request


def _read(path: Path | None) -> bytes:
    return path.read_bytes() if path else b""


def _mask_args(cmd: argparse.ArgumentParser, verb: str) -> None:
    cmd.add_argument("--image", type=Path, required=True, help="image to edit (PNG/JPEG)")
    mask = cmd.add_mutually_exclusive_group(required=True)
    mask.add_argument("--mask-prompt", help=f"describe the region to {verb}")
    mask.add_argument("--mask-image", type=Path, help=f"black = region to {verb}")
    cmd.add_argument("--negative", default="", help="what not to draw")


def _generate_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt")
    cmd.add_argument("--negative", default="", help="what not to draw")
    cmd.add_argument("--condition-image", type=Path, help="reference image to follow")
    cmd.add_argument("--control-mode", choices=sorted(CONTROL_MODES))
    cmd.add_argument("--control-strength", type=float)


def _build_generate(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.TextToImageTask(text=args.prompt, negative_text=args.negative)
    if args.condition_image:
        task.conditioning.condition_image = _read(args.condition_image)
        if args.control_mode:
            task.conditioning.control_mode = CONTROL_MODES[args.control_mode]
        if args.control_strength is not None:
            task.conditioning.control_strength = args.control_strength
    return _request(args, text_to_image=task)


def _inpaint_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", nargs="?", default="", help="what to paint (optional)")
    _mask_args(cmd, "replace")


def _build_inpaint(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.InpaintingTask(
        image=_read(args.image), text=args.prompt, negative_text=args.negative
    )
    _set_mask(task, args)
    return _request(args, inpainting=task)


def _outpaint_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", help="what to paint around the kept region")
    _mask_args(cmd, "keep")
    cmd.add_argument("--mode", choices=sorted(OUTPAINTING_MODES), default="default")


def _build_outpaint(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    mode = OUTPAINTING_MODES[args.mode]
    task = tasks.OutpaintingTask(
        image=_read(args.image), text=args.prompt, negative_text=args.negative, mode=mode
    )
    _set_mask(task, args)
    return _request(args, outpainting=task)


def _set_mask(task: tasks.InpaintingTask | tasks.OutpaintingTask, args: argparse.Namespace) -> None:
    if args.mask_prompt is not None:
        task.mask_prompt = args.mask_prompt
    else:
        task.mask_image = _read(args.mask_image)


def _vary_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("prompt", nargs="?", default="", help="optional prompt")
    cmd.add_argument("--image", type=Path, action="append", required=True, help="1-5 images")
    cmd.add_argument("--similarity", type=float, help="0.2-1.0, default 0.7")
    cmd.add_argument("--negative", default="", help="what not to draw")


def _build_vary(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    task = tasks.ImageVariationTask(
        images=[_read(p) for p in args.image], text=args.prompt, negative_text=args.negative
    )
    if args.similarity is not None:
        task.similarity_strength = args.similarity
    return _request(args, image_variation=task)


def _remove_bg_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--image", type=Path, required=True, help="image (PNG/JPEG)")


def _build_remove_bg(args: argparse.Namespace) -> pb.GenerateImagesRequest:
    return _request(args, background_removal=tasks.BackgroundRemovalTask(image=_read(args.image)))


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
        reference_image=_read(args.reference_image),
    )
    return _request(args, color_guided_generation=task)


_COMMANDS: list[tuple[str, str, Builder, Callable[[argparse.ArgumentParser], None]]] = [
    ("generate", "text to image (optionally conditioned)", _build_generate, _generate_args),
    ("inpaint", "replace a masked region", _build_inpaint, _inpaint_args),
    ("outpaint", "keep a masked region, regenerate the rest", _build_outpaint, _outpaint_args),
    ("vary", "variations of 1-5 images", _build_vary, _vary_args),
    ("remove-bg", "transparent background", _build_remove_bg, _remove_bg_args),
    ("color", "colour-guided generation", _build_color, _color_args),
]
