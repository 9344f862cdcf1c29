"""The CLI as a person uses it: every task command writes real PNGs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.imagekit import box_mask, decode, disc_on_white, encode, photo


async def run_cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


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
    for (name, _), (code, output) in zip(commands.items(), runs, strict=True):
        assert code == 0, f"{name}: {output}"
        written = sorted((tmp_path / name).glob("*.png"))
        assert len(written) == (2 if name == "generate" else 1), (name, output)
        for path in written:
            assert decode(path.read_bytes()).format == "PNG"


async def test_bad_input_prints_the_field_and_exits_2(gateway, tmp_path) -> None:
    code, output = await run_cli(
        "generate", "x" * 600, "--target", gateway.address, "--out", str(tmp_path)
    )
    assert code == 2
    assert "INVALID_ARGUMENT" in output
    assert "text_to_image.text" in output
