"""The watermark's tile: where each chip sits, and how a folded tile is read.

A TILE x TILE tile of ±1 chips (CHIP x CHIP pixels each) repeats over the
whole image. A fixed, key-derived share of the chips is a sync pattern; each
of the others carries one coded payload bit, its sign whitened by a key-
derived mask, so neither the tile nor its repetition shows structure.

Reading works on the high-passed luminance *folded* modulo TILE (summed into
one tile): every repetition adds up, and a crop only shifts the tile
cyclically. Phase correlation with the sync chips finds that shift, even
where folded content is itself periodic (stripes, checks); a matched filter
then reads each chip, with the content's strongest spectral lines capped so
they cannot swamp the bits. The tile is 72 px, not a power of two, so
fewer man-made periodic textures line up with it.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.provenance._ecc import CODED_BITS

TILE = 72
CHIP = 4
HIGHPASS_RADIUS = 2  # the detector's residual is luma minus its 5x5 box mean
_GRID = TILE // CHIP
_SPECTRAL_CAP = 5.0  # bins louder than 5x the median are content, not mark
_LAYOUT_KEY = b"io.github.titan-gateway.tiled-ss.1/layout"

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Layout:
    """Per chip (a _GRID x _GRID grid): sync sign or 0, coded-bit slot or -1, whitening sign."""

    sync: Floats
    slot: Ints
    signs: Floats


@dataclass(frozen=True)
class Reading:
    """What a folded tile says: sync peak strength (z-score) and one soft value per coded bit."""

    sync_z: float
    soft: Floats


@functools.cache
def layout() -> Layout:
    """The key-derived chip layout, the same in every process."""
    seed = int.from_bytes(hashlib.sha256(_LAYOUT_KEY).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    order = rng.permutation(_GRID * _GRID)
    slot = np.full(_GRID * _GRID, -1, np.int64)
    slot[order[:CODED_BITS]] = np.arange(CODED_BITS)
    signs = rng.choice([-1.0, 1.0], _GRID * _GRID)
    sync = np.where(slot < 0, signs, 0.0)
    plan = Layout(_grid(sync), slot.reshape(_GRID, _GRID), _grid(signs))
    for array in (plan.sync, plan.slot, plan.signs):
        array.setflags(write=False)
    return plan


def _grid(values: Floats) -> Floats:
    return values.reshape(_GRID, _GRID).astype(np.float64)


def tile(coded: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The ±1 TILE x TILE pattern carrying the coded bits."""
    plan = layout()
    bits = 2.0 * coded[np.maximum(plan.slot, 0)] - 1.0
    chips = np.where(plan.slot >= 0, plan.signs * bits, plan.sync)
    return _upsample(chips).astype(np.float32)


def fold(residual: npt.NDArray[np.float32]) -> Floats:
    """Sum the image into one tile: pixel (y, x) lands on (y % TILE, x % TILE)."""
    height, width = residual.shape
    padded = np.zeros((-(-height // TILE) * TILE, -(-width // TILE) * TILE), np.float64)
    padded[:height, :width] = residual
    rows, cols = padded.shape[0] // TILE, padded.shape[1] // TILE
    folded: Floats = padded.reshape(rows, TILE, cols, TILE).sum(axis=(0, 2))
    return folded


def read(folded: Floats) -> Reading:
    """Find the tile's cyclic shift by the sync chips, then read every coded bit."""
    spectrum = np.fft.fft2(folded)
    response = _highpass_response()
    shift, z = _sync_shift(spectrum, response)
    matched = np.fft.ifft2(_capped(spectrum) * response).real
    chips = np.roll(matched, (-shift[0], -shift[1]), axis=(0, 1))
    chips = chips.reshape(_GRID, CHIP, _GRID, CHIP).sum(axis=(1, 3))
    plan = layout()
    soft = np.zeros(CODED_BITS)
    mask = plan.slot >= 0
    soft[plan.slot[mask]] = (chips * plan.signs)[mask]
    return Reading(z, soft)


def _sync_shift(spectrum: npt.NDArray[np.complex128], response: Floats) -> tuple[Ints, float]:
    magnitude = np.abs(spectrum)
    whitened = spectrum / (magnitude + 1e-3 * magnitude.mean() + 1e-12)
    template = np.fft.fft2(_upsample(layout().sync)) * response
    correlation = np.fft.ifft2(whitened * np.conj(template)).real
    peak = int(np.argmax(correlation))
    z = (correlation.flat[peak] - correlation.mean()) / (correlation.std() + 1e-12)
    return np.array(divmod(peak, TILE), np.int64), float(z)


def _capped(spectrum: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
    magnitude = np.abs(spectrum)
    cap = _SPECTRAL_CAP * float(np.median(magnitude)) + 1e-12
    capped: npt.NDArray[np.complex128] = spectrum * np.minimum(1.0, cap / (magnitude + 1e-12))
    return capped


@functools.cache
def _highpass_response() -> Floats:
    """Frequency response of the detector's residual filter, applied cyclically to a tile."""
    kernel = np.zeros(TILE)
    kernel[np.arange(-HIGHPASS_RADIUS, HIGHPASS_RADIUS + 1) % TILE] = 1 / (2 * HIGHPASS_RADIUS + 1)
    box = np.fft.fft(kernel).real
    response = 1.0 - np.outer(box, box)
    response.setflags(write=False)
    return response


def _upsample(chips: Floats) -> Floats:
    return np.kron(chips, np.ones((CHIP, CHIP))).astype(np.float64)
