"""The watermark's test corpus: varied, deterministic, quick to build.

Robustness figures mean little on one kind of picture, so the corpus mixes
what the emulator renders (gradients with flat shapes, both renderers draw
them with `generate`), its background-removal output (RGBA), photo-like
1/f noise, strong noise, hard-edged textures and the worst case for an
additive mark, flat colour and smooth gradients. Sizes vary from 256 px to
1024 px, square and not. `marked_corpus` and `clean_corpus` never share an
image: one is watermarked, the other must never read as marked.

Everything derives from fixed seeds (numpy's PCG64 and the emulator's
sha256-seeded `Random`), so every run measures the same pictures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from gateway.emulator.render import generate, seeded_rng, transparent_background

Size = tuple[int, int]
_SIZES: tuple[Size, ...] = (
    (512, 512),
    (768, 512),
    (384, 640),
    (256, 256),
    (1024, 576),
    (640, 640),
    (512, 320),
    (320, 480),
    (1024, 1024),
    (448, 704),
)
_PROMPTS = (
    "a lighthouse at dusk",
    "red fox in snow",
    "bowl of lemons on a table",
    "city skyline, long exposure",
    "portrait of an astronaut",
    "isometric game level",
    "watercolour mountains",
    "macro shot of a leaf",
)


def emulator_image(size: Size, index: int, salt: str) -> Image.Image:
    """What the emulator renders for a prompt and seed: gradient plus flat shapes."""
    prompt = _PROMPTS[index % len(_PROMPTS)]
    return generate(size, seeded_rng("provenance-corpus", salt, prompt, index))


def emulator_cutout(size: Size, index: int, salt: str) -> Image.Image:
    """Background removal's RGBA output: the transparent pixels keep their colour."""
    return transparent_background(emulator_image(size, index, salt))


def photo_like(size: Size, index: int, salt: str) -> Image.Image:
    """Colour 1/f noise, the power spectrum of natural photographs, plus soft shapes."""
    rng = _rng(salt, index)
    width, height = size
    field = np.zeros((height, width, 3), np.float32)
    for octave in range(1, 8):
        cells = 2**octave
        coarse = rng.normal(size=(cells, cells, 3)).astype(np.float32)
        for channel in range(3):
            layer = Image.fromarray(coarse[:, :, channel], "F")
            field[:, :, channel] += np.asarray(layer.resize(size, Image.Resampling.BICUBIC)) / (
                1.6**octave
            )
    field = (field - field.mean()) / (field.std() + 1e-6)
    image = _to_image(128 + 45 * field)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        radius = int(rng.integers(width // 12, width // 4))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(1.2))


def noisy(size: Size, index: int, salt: str) -> Image.Image:
    """An emulator picture under strong sensor-like noise (sigma 18 grey levels)."""
    base = np.asarray(emulator_image(size, index, salt), np.float32)
    return _to_image(base + _rng(salt, index).normal(0, 18, base.shape))


def textured(size: Size, index: int, salt: str) -> Image.Image:
    """Hard-edged stripes and checks: high-contrast content at many frequencies."""
    rng = _rng(salt, index)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = float(rng.uniform(6, 40))
    angle = float(rng.uniform(0, np.pi))
    wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    checks = ((xx // int(rng.integers(8, 64)) + yy // int(rng.integers(8, 64))) % 2) * 2 - 1
    luma = 128 + 70 * np.sign(wave) * 0.6 + 40 * checks
    tint = rng.uniform(0.6, 1.0, 3).astype(np.float32)
    return _to_image(luma[:, :, None] * tint[None, None, :])


def flat(size: Size, index: int, salt: str) -> Image.Image:
    """One colour: nothing hides the mark, and rounding decides what survives."""
    rng = _rng(salt, index)
    colour = tuple(int(v) for v in rng.integers(30, 226, 3))
    return Image.new("RGB", size, colour)


def gradient(size: Size, index: int, salt: str) -> Image.Image:
    """A smooth two-colour ramp at a random angle, like a clear sky."""
    rng = _rng(salt, index)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = float(rng.uniform(0, 2 * np.pi))
    ramp = xx * np.cos(angle) + yy * np.sin(angle)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    return _to_image(low + ramp[:, :, None] * (high - low))


Maker = Callable[[Size, int, str], Image.Image]
# Weighted towards what the gateway delivers: rendered pictures come first.
_MAKERS: tuple[Maker, ...] = (
    emulator_image,
    photo_like,
    emulator_image,
    noisy,
    emulator_cutout,
    photo_like,
    textured,
    emulator_image,
    gradient,
    flat,
)


def corpus(count: int, salt: str) -> list[Image.Image]:
    """`count` images cycling through the kinds and sizes; `salt` picks the set."""
    return [
        _MAKERS[i % len(_MAKERS)](
            _SIZES[(i * 3 + i // len(_MAKERS) + _salt_number(salt)) % len(_SIZES)], i, salt
        )
        for i in range(count)
    ]


def marked_corpus(count: int = 50) -> list[Image.Image]:
    """The images the robustness test watermarks."""
    return corpus(count, "marked")


def clean_corpus(count: int = 50) -> list[Image.Image]:
    """Different images that are never watermarked: each must read as unmarked."""
    return corpus(count, "clean")


def _rng(salt: str, index: int) -> np.random.Generator:
    return np.random.default_rng([_salt_number(salt), index])


def _salt_number(salt: str) -> int:
    return int.from_bytes(hashlib.sha256(salt.encode()).digest()[:4], "big")


def _to_image(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "RGB")
