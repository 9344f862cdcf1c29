"""The CLI as a person uses it: every task command writes real images, in the
format asked for, and prints their paths on stdout (progress on stderr)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from gateway.cli import _parser
from gateway.cli.client import _consume
from tests.auth import DEV_KEY
from tests.imagekit import box_mask, decode, disc_on_white, encode, outline, photo
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks

SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


async def run_cli(*args: str) -> tuple[int, str, str]:
    """Run `python -m gateway ARGS`; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


def printed_paths(stdout: str) -> list[Path]:
    return [Path(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "photo": (tmp_path / "in.png", encode(photo(512, 512))),
        "mask": (tmp_path / "mask.png", encode(box_mask((512, 512), (100, 100, 300, 300)))),
        "disc": (tmp_path / "disc.jpg", encode(disc_on_white(512), "JPEG")),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {name: path for name, (path, _) in files.items()}


@pytest.fixture
def small_inputs(tmp_path: Path) -> dict[str, str]:
    """128 px inputs: above Stability's 64 px minimum side, within Fast
    Upscale's 1536 px / 1,048,576 px and Creative Upscale's pixel range."""
    holed = photo(128, 128).convert("RGBA")
    ImageDraw.Draw(holed).rectangle((32, 32, 63, 63), fill=(0, 0, 0, 0))
    files = {
        "photo": ("small.png", encode(photo(128, 128))),
        "mask": ("small-mask.png", encode(box_mask((128, 128), (32, 32, 63, 63)))),
        "holed": ("holed.png", encode(holed)),
        "sketch": ("sketch.png", encode(outline(128))),
        "style": ("style.jpg", encode(disc_on_white(128), "JPEG")),
    }
    for name, data in files.values():
        (tmp_path / name).write_bytes(data)
    return {key: str(tmp_path / name) for key, (name, _) in files.items()}


async def test_every_task_command_writes_pngs(gateway, inputs, tmp_path) -> None:
    photo_, mask, disc = (str(inputs[k]) for k in ("photo", "mask", "disc"))
    size = ["--width", "512", "--height", "512"]
    commands = {
        "generate": ["generate", "a red fox in snow, studio light", "-n", "2", *size],
        "inpaint": ["inpaint", "--image", photo_, "--mask-prompt", "the cup", "a glass of water"],
        "outpaint": ["outpaint", "--image", photo_, "--mask-image", mask, "--mode", "precise", "a"],
        "vary": ["vary", "--image", photo_, "--image", disc, *size],
        "remove-bg": ["remove-bg", "--image", disc],
        "color": ["color", "a poster", "--color", "#FF0000", "--color", "#0000FF", *size],
    }
    runs = await asyncio.gather(
        *(
            run_cli(*argv, "--target", gateway.address, "--out", str(tmp_path / name))
            for name, argv in commands.items()
        )
    )
    for (name, _), (code, stdout, stderr) in zip(commands.items(), runs, strict=True):
        assert code == 0, f"{name}: {stderr}"
        written = sorted((tmp_path / name).glob("*.png"))
        assert len(written) == (2 if name == "generate" else 1), (name, stderr)
        assert sorted(printed_paths(stdout)) == written, (name, stdout)
        for path in written:
            assert decode(path.read_bytes()).format == "PNG"
        assert "delivered" in stderr


async def test_inpaint_and_outpaint_write_the_returned_mask_beside_the_image(
    gateway, inputs, tmp_path
) -> None:
    photo_, mask = str(inputs["photo"]), str(inputs["mask"])
    commands = {
        "inpaint": ["inpaint", "--image", photo_, "--mask-image", mask, "a cup"],
        "outpaint": ["outpaint", "--image", photo_, "--mask-prompt", "the disc", "a beach"],
    }
    runs = await asyncio.gather(
        *(
            run_cli(*argv, "--return-mask", "--target", gateway.address, "--out", str(tmp_path / n))
            for n, argv in commands.items()
        )
    )
    for name, (code, stdout, stderr) in zip(commands, runs, strict=True):
        assert code == 0, f"{name}: {stderr}"
        image, mask_path = printed_paths(stdout)
        assert mask_path == image.with_name(f"{image.stem}-mask.png")
        assert decode(image.read_bytes()).size == (512, 512)
        assert decode(mask_path.read_bytes()).format == "PNG"


async def test_stability_commands_write_the_format_asked_for(
    make_gateway, small_inputs, tmp_path
) -> None:
    gateway = await make_gateway(default_model_id=None)  # the shipped defaults: Stability
    photo_, mask, holed, sketch, style = (
        small_inputs[k] for k in ("photo", "mask", "holed", "sketch", "style")
    )
    # name: (argv, format written, size written or None)
    commands: dict[str, tuple[list[str], str, tuple[int, int] | None]] = {
        "generate-sketch": (
            ["generate", "a house", "--condition-image", sketch, "--control-mode", "sketch",
             "--style", "line-art"],
            "PNG", (128, 128),
        ),
        "generate-jpeg": (
            ["generate", "a fox", "--aspect-ratio", "16:9", "--format", "jpeg"], "JPEG", None,
        ),
        "inpaint-no-mask": (["inpaint", "a cup", "--image", holed, "--no-mask"], "PNG", None),
        "img2img": (
            ["img2img", "a watercolour", "--image", photo_, "--strength", "0.6",
             "--format", "webp"],
            "WEBP", None,
        ),
        "upscale-fast": (["upscale", "--mode", "fast", "--image", photo_], "PNG", (512, 512)),
        "upscale-conservative": (
            ["upscale", "--mode", "conservative", "a test card", "--image", photo_,
             "--creativity", "0.3", "--format", "jpeg"],
            "JPEG", None,
        ),
        "upscale-creative": (
            ["upscale", "--mode", "creative", "a test card", "--image", photo_,
             "--creativity", "0.3", "--style", "anime", "--format", "webp"],
            "WEBP", None,
        ),
        "replace": (
            ["replace", "a blue ball", "--image", photo_, "--search", "the yellow disc",
             "--grow-mask", "3", "--style", "photographic"],
            "PNG", (128, 128),
        ),
        "recolor": (
            ["recolor", "a red disc", "--image", photo_, "--select", "the disc",
             "--format", "jpeg"],
            "JPEG", (128, 128),
        ),
        "erase": (
            ["erase", "--image", photo_, "--mask-image", mask, "--grow-mask", "2"],
            "PNG", (128, 128),
        ),
        "expand": (
            ["expand", "more sky", "--image", photo_, "--left", "32", "--down", "16",
             "--creativity", "0.4"],
            "PNG", (160, 144),
        ),
        "style-guide": (
            ["style-guide", "a castle", "--image", style, "--fidelity", "0.7",
             "--aspect-ratio", "1:1", "--format", "webp"],
            "WEBP", None,
        ),
        "style-transfer": (
            ["style-transfer", "--image", photo_, "--style-image", style, "--style-strength",
             "0.8", "--composition-fidelity", "0.9", "--change-strength", "0.5"],
            "PNG", (128, 128),
        ),
    }  # fmt: skip
    runs = await asyncio.gather(
        *(
            run_cli(*argv, "--target", gateway.address, "--out", str(tmp_path / name))
            for name, (argv, _, _) in commands.items()
        )
    )
    for (name, (_, fmt, size)), (code, stdout, stderr) in zip(commands.items(), runs, strict=True):
        assert code == 0, f"{name}: {stderr}"
        (path,) = printed_paths(stdout)
        assert path.parent == tmp_path / name
        assert path.suffix == SUFFIXES[fmt], (name, path)
        assert sorted(path.parent.iterdir()) == [path]
        image = decode(path.read_bytes())
        assert image.format == fmt, name
        if size is not None:
            assert image.size == size, name


async def test_models_lists_every_registered_model(make_gateway) -> None:
    gateway = await make_gateway(default_model_id=None)
    code, stdout, stderr = await run_cli("models", "--target", gateway.address)
    assert code == 0, stderr
    header, *rows = stdout.splitlines()
    assert header.split()[:3] == ["ID", "DIALECT", "TASKS"]
    by_id = {row.split()[0]: row for row in rows}
    assert sorted(by_id) == gateway.parts.registry.ids
    fast = by_id["stability.stable-fast-upscale-v1:0"].split()
    assert fast[1:4] == ["stability", "fast_upscale", "0.030"]
    assert fast[-1] == "fast_upscale"  # the default for it
    titan = by_id["amazon.titan-image-generator-v2:0"]
    assert "2026-06-30 -> stability.sd3-5-large-v1:0" in titan


async def test_models_needs_an_admin_key(make_gateway) -> None:
    gateway = await make_gateway(default_model_id=None)
    code, stdout, stderr = await run_cli(
        "models", "--target", gateway.address, "--admin-key", DEV_KEY
    )
    assert code == 2
    assert stdout == ""
    assert "PERMISSION_DENIED" in stderr


def test_try_on_builds_a_virtual_try_on_request(small_inputs) -> None:
    # Not run end to end: the emulator does not emulate VIRTUAL_TRY_ON.
    photo_, mask, style = small_inputs["photo"], small_inputs["mask"], small_inputs["style"]
    argv = ["try-on", "--source", photo_, "--garment", style, "--model", "amazon.nova-canvas-v1:0"]
    parser = _parser()

    def build(*more: str) -> pb.GenerateImagesRequest:
        args = parser.parse_args([*argv, *more])
        request: pb.GenerateImagesRequest = args.build(args)
        return request

    by_class = build("--garment-class", "UPPER_BODY", "--return-mask", "-n", "2")
    assert by_class.model_id == "amazon.nova-canvas-v1:0"
    assert by_class.config.number_of_images == 2
    task = by_class.virtual_try_on
    assert task.mask_type == tasks.TRY_ON_MASK_TYPE_GARMENT
    assert (task.garment_class, task.return_mask) == ("UPPER_BODY", True)
    assert task.source_image == Path(photo_).read_bytes()
    assert task.reference_image == Path(style).read_bytes()
    by_mask = build("--mask-image", mask).virtual_try_on
    assert by_mask.mask_type == tasks.TRY_ON_MASK_TYPE_IMAGE
    assert by_mask.mask_image == Path(mask).read_bytes()
    by_prompt = build("--mask-prompt", "the jacket").virtual_try_on
    assert (by_prompt.mask_type, by_prompt.mask_prompt) == (
        tasks.TRY_ON_MASK_TYPE_PROMPT,
        "the jacket",
    )


async def test_contradictory_options_exit_2_before_calling_the_gateway(small_inputs) -> None:
    photo_ = small_inputs["photo"]
    nowhere = ["--target", "127.0.0.1:1"]
    cases = {
        "--mask-type image needs --mask-image": [
            "try-on", "--source", photo_, "--garment", photo_, "--mask-type", "image",
        ],
        "--mode fast takes no prompt": ["upscale", "a fox", "--mode", "fast", "--image", photo_],
        "--mode conservative takes no --style": [
            "upscale", "a fox", "--mode", "conservative", "--image", photo_, "--style", "anime",
        ],
    }  # fmt: skip
    runs = await asyncio.gather(*(run_cli(*argv, *nowhere) for argv in cases.values()))
    for message, (code, stdout, stderr) in zip(cases, runs, strict=True):
        assert code == 2
        assert message in stderr
        assert stdout == ""


async def test_images_are_written_by_mime_type_with_masks_and_fallbacks(tmp_path, capsys) -> None:
    png, jpeg, webp = (encode(Image.new("RGB", (8, 8)), fmt) for fmt in ("PNG", "JPEG", "WEBP"))

    async def stream() -> AsyncIterator[pb.GenerateImagesResponse]:
        accepted = pb.Accepted(
            request_id="abcdef12-3456", model_id="model-a", image_count=2,
            route_arm="split:model-a", fallback_model_ids=["model-b"],
        )  # fmt: skip
        yield pb.GenerateImagesResponse(accepted=accepted)
        fallback = pb.Image(
            index=1, data=jpeg, mime_type="image/jpeg", model_id="model-b",
            width=8, height=8, mask=png,
        )  # fmt: skip
        yield pb.GenerateImagesResponse(image=fallback)
        yield pb.GenerateImagesResponse(
            image=pb.Image(index=0, data=webp, mime_type="image/webp", model_id="model-a")
        )
        yield pb.GenerateImagesResponse(completed=pb.Completed(images_delivered=2))

    assert await _consume(stream(), tmp_path) == 0
    out, err = capsys.readouterr()
    names = ["abcdef12-1.jpg", "abcdef12-1-mask.png", "abcdef12-0.webp"]
    assert out.splitlines() == [str(tmp_path / name) for name in names]
    for name, fmt in zip(names, ("JPEG", "PNG", "WEBP"), strict=True):
        assert decode((tmp_path / name).read_bytes()).format == fmt
    assert "route arm: split:model-a" in err
    assert "fallbacks: model-b" in err
    assert "abcdef12-1.jpg (8x8) with fallback model model-b" in err
    assert "abcdef12-0.webp (0x0)\n" in err  # made by the accepted model: no note


async def test_bad_input_prints_the_field_and_exits_2(gateway, tmp_path) -> None:
    code, stdout, stderr = await run_cli(
        "generate", "x" * 600, "--target", gateway.address, "--out", str(tmp_path)
    )
    assert code == 2
    assert stdout == ""
    assert "INVALID_ARGUMENT" in stderr
    assert "text_to_image.text" in stderr
