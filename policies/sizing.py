"""Fitting a requested size under a limit: to an allowed size, or by scaling down.

Pure integer and `Fraction` arithmetic: no float rounding decides which size
wins, and any int the caller passes works.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

GRID = 16  # free-size models (Nova Canvas) want each side a multiple of 16

Size = tuple[int, int]


def within(size: Size, max_width: int | None, max_height: int | None) -> bool:
    width, height = size
    wide_ok = max_width is None or width <= max_width
    return wide_ok and (max_height is None or height <= max_height)


def nearest_allowed(
    size: Size, options: Iterable[Size], max_width: int | None, max_height: int | None
) -> Size | None:
    """The allowed size within the bounds whose aspect ratio is closest to `size`'s.

    Closeness is the ratio of the two aspect ratios (so 2:1 and 1:2 are equally
    far from 1:1); ties go to the size with the most pixels, then to the first
    listed. None when no allowed size fits.
    """
    fitting = [o for o in options if o[0] >= 1 and o[1] >= 1 and within(o, max_width, max_height)]
    if not fitting:
        return None
    wanted = Fraction(size[0], size[1])
    return min(fitting, key=lambda o: (_distance(wanted, Fraction(o[0], o[1])), -o[0] * o[1]))


def _distance(a: Fraction, b: Fraction) -> Fraction:
    return a / b if a >= b else b / a


def scale_down(size: Size, max_width: int | None, max_height: int | None) -> Size:
    """`size` scaled to fit, keeping its aspect ratio, each side rounded down to 16.

    A side never goes below 16, so an extreme aspect ratio may end up slightly
    off; the bounds (at least 16 each, checked at load) still hold.
    """
    width, height = size
    factor = Fraction(1)
    if max_width is not None and width > max_width:
        factor = min(factor, Fraction(max_width, width))
    if max_height is not None and height > max_height:
        factor = min(factor, Fraction(max_height, height))
    return _on_grid(width * factor), _on_grid(height * factor)


def _on_grid(side: Fraction) -> int:
    return max(GRID, int(side) // GRID * GRID)
