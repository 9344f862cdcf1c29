"""The invisible watermark: a short id in the pixels, the soft binding of the C2PA manifest.

A manifest lives in the file's metadata and is gone once someone re-saves the
pixels; the watermark is in the pixels themselves, so a stripped copy still
leads back (through the ledger) to its request and its manifest.

Method (tiled spread spectrum, numpy and Pillow only; measured against
TrustMark and invisible-watermark in ``bench/watermarks.py``): the luminance
gets a repeated tile of ±1 chips (`_tile`) carrying the id, its check and a
convolutional code (`_ecc`). The amplitude follows the local texture (about 2
grey levels on flat areas, up to 5 on busy ones), capped so that PSNR stays
at 39 dB or more. The same value is added to R, G and B, so hue does not
move and alpha is never touched.

Detection high-passes the luminance, folds it into one tile (a crop is then a
cyclic shift), finds the shift with the sync chips and decodes; it retries
after undoing the common resize factors. Both functions are pure and
thread-safe; they are CPU work, run them off the event loop.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops, ImageFilter

from gateway.provenance import _ecc, _tile

ALGORITHM = "io.github.titan-gateway.tiled-ss.1"
ID_HEX_DIGITS = 2 * _ecc.ID_BYTES

_FLAT_AMPLITUDE = 1.4  # grey levels where nothing masks the mark: rounds to ±1
_MAX_AMPLITUDE = 5.0  # busiest texture
_TEXTURE_GAIN = 0.8  # amplitude per grey level of local mean absolute deviation
_MIN_PSNR_DB = 39.0
# Resize factors a copy may have gone through, most likely first; each is
# undone before folding (a 50 % copy is scaled back up by 2).
_SCALES = (1.0, 0.5, 2.0, 0.75, 1.5)
_MAX_PIXELS = 4096 * 4096  # no original is larger: never upsample a copy beyond it
_MODES = ("RGB", "RGBA", "L", "LA")

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Detection:
    """The outcome of `detect`.

    `confidence` is 0 when nothing was found; otherwise how cleanly the
    coded bits read: the share read as written, rescaled so a coin toss
    reads 0 (about 0.95 for a delivered image, 0.6-0.9 after lossy copies).
    `found` rests on the 24-bit check, not on this figure.
    """

    found: bool
    watermark_id: str
    confidence: float


NOT_FOUND = Detection(found=False, watermark_id="", confidence=0.0)


def new_watermark_id() -> str:
    """A random id: 12 lowercase hex digits (48 bits)."""
    return secrets.token_hex(_ecc.ID_BYTES)


def embed(image: Image.Image, watermark_id: str) -> Image.Image:
    """`image` with `watermark_id` in its luminance: same size and mode, alpha untouched.

    Modes RGB, RGBA, L and LA are marked; others (palette, CMYK, 16-bit)
    raise ValueError, as converting back would destroy the mark.
    """
    if image.mode not in _MODES:
        raise ValueError(f"cannot watermark a {image.mode} image (use one of {', '.join(_MODES)})")
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    colour = pixels.shape[2] - (1 if image.mode in ("RGBA", "LA") else 0)
    delta = _delta(image, watermark_id)
    marked = pixels.copy()
    shifted = pixels[:, :, :colour].astype(np.float32) + delta[:, :, None]
    marked[:, :, :colour] = np.clip(shifted, 0, 255).astype(np.uint8)
    return Image.fromarray(marked.squeeze(axis=2) if marked.shape[2] == 1 else marked, image.mode)


def detect(image: Image.Image) -> Detection:
    """The watermark `image` carries, if any. Never raises for image content:
    tiny, blank or noisy pictures simply read as not found."""
    try:
        luma = image.convert("L")
    except (ValueError, OSError):
        return NOT_FOUND
    for scale in _SCALES:
        size = (round(luma.width / scale), round(luma.height / scale))
        if min(size) < _tile.TILE or (scale < 1.0 and size[0] * size[1] > _MAX_PIXELS):
            continue
        view = luma if scale == 1.0 else luma.resize(size, Image.Resampling.BICUBIC)
        found = _read(view)
        if found.found:
            return found
    return NOT_FOUND


# ------------------------------------------------------------------ embedding


def _delta(image: Image.Image, watermark_id: str) -> Floats:
    """The integer luminance change per pixel: pattern x texture-masked amplitude."""
    coded = _ecc.encode(_parse_id(watermark_id))
    pattern = _tiled(_tile.tile(coded), image.height, image.width)
    amplitude = _amplitude(image.convert("L"))
    # Busy pictures would overshoot the PSNR budget: scale the whole map down
    # (the mean square of a ±1 pattern times the amplitude is the map's own),
    # then once more in the rare case rounding still overshoots.
    budget = 255.0**2 / 10 ** (_MIN_PSNR_DB / 10)
    amplitude *= min(1.0, float(np.sqrt(0.97 * budget / np.mean(amplitude * amplitude))))
    delta: Floats = np.rint(pattern * amplitude)
    while float(np.mean(delta * delta)) > budget:
        amplitude *= 0.95
        delta = np.rint(pattern * amplitude)
    return delta


def _parse_id(watermark_id: str) -> bytes:
    if re.fullmatch(f"[0-9a-f]{{{ID_HEX_DIGITS}}}", watermark_id) is None:
        raise ValueError(f"a watermark id is {ID_HEX_DIGITS} lowercase hex digits")
    return bytes.fromhex(watermark_id)


def _tiled(tile: Floats, height: int, width: int) -> Floats:
    reps = (-(-height // _tile.TILE), -(-width // _tile.TILE))
    tiled: Floats = np.tile(tile, reps)[:height, :width]
    return tiled


def _amplitude(luma: Image.Image) -> Floats:
    """Texture masking: the mean absolute deviation around each pixel sets the strength."""
    detail = ImageChops.difference(luma, luma.filter(ImageFilter.BoxBlur(1)))
    # Averaged over about 9x9 px; done at a quarter of the size, as it is smooth anyway.
    coarse = detail.reduce(4).filter(ImageFilter.BoxBlur(1))
    texture = np.asarray(coarse.resize(luma.size, Image.Resampling.BILINEAR), np.float32)
    amplitude: Floats = np.clip(
        _FLAT_AMPLITUDE + _TEXTURE_GAIN * texture, _FLAT_AMPLITUDE, _MAX_AMPLITUDE
    )
    return amplitude


# ------------------------------------------------------------------ detection


def _read(luma: Image.Image) -> Detection:
    reading = _tile.read(_tile.fold(_residual(luma)))
    ident, fit = _ecc.decode(reading.soft)
    if ident is None:
        return NOT_FOUND
    return Detection(found=True, watermark_id=ident.hex(), confidence=round(max(0.0, fit), 3))


def _residual(luma: Image.Image) -> Floats:
    """Luma minus its local mean (the content), with strong edges clipped.

    Without the clip, a few hard edges outweigh thousands of pixels of mark.
    """
    values = np.asarray(luma, np.float32)
    mean = np.asarray(luma.filter(ImageFilter.BoxBlur(_tile.HIGHPASS_RADIUS)), np.float32)
    residual = values - mean
    limit = 3.0 * (float(np.mean(np.abs(residual))) + 0.5)
    clipped: Floats = np.clip(residual, -limit, limit)
    return clipped
