"""Small pure pieces: money conversion and formatting, size fitting."""

from __future__ import annotations

import pytest

from policies.money import format_usd, usd_to_micros
from policies.sizing import nearest_allowed, scale_down


@pytest.mark.parametrize(
    ("value", "micros"),
    [(1, 1_000_000), (0, 0), (0.008, 8_000), (1.00, 1_000_000), (0.000001, 1), (5.5, 5_500_000),
     (12.345678, 12_345_678), (10**12, 10**18), (0.1, 100_000)],
)  # fmt: skip
def test_usd_to_micros_is_exact(value: float, micros: int) -> None:
    assert usd_to_micros(value) == micros


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0.0000001, "0.0000001 USD is finer than one micro-USD (at most 6 decimal places)"),
        (1.0000005, "1.0000005 USD is finer than one micro-USD (at most 6 decimal places)"),
        (-0.5, "an amount of USD must not be negative, got -0.5"),
        (0.1 + 0.2, "0.30000000000000004 is not an exact amount;"
         " write at most 15 significant digits"),
        (float("nan"), "nan is not an amount of USD"),
        (float("inf"), "inf is not an amount of USD"),
        (True, "expected an amount in USD (a number), got true"),
        ("1.50", "expected an amount in USD (a number), got '1.50'"),
        (None, "expected an amount in USD (a number), got null"),
    ],
    ids=["sub-micro", "sub-micro above one", "negative", "inexact float", "nan", "inf", "bool",
         "string", "null"],
)  # fmt: skip
def test_usd_to_micros_refuses(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        usd_to_micros(value)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("micros", "text"),
    [(8_000, "$0.008"), (10_000, "$0.01"), (1_000_000, "$1.00"), (0, "$0.00"),
     (12_345_678, "$12.345678"), (-40_000, "-$0.04")],
)  # fmt: skip
def test_format_usd(micros: int, text: str) -> None:
    assert format_usd(micros) == text


@pytest.mark.parametrize(
    ("size", "bounds", "expected"),
    [
        ((1408, 1408), (1024, 1024), (1024, 1024)),
        ((1024, 4096), (1024, 1024), (256, 1024)),
        ((4096, 16), (1024, None), (1024, 16)),
        ((5000, 17), (100, None), (96, 16)),
        ((2**40, 2**40), (2048, 2048), (2048, 2048)),
    ],
    ids=["square", "tall", "flat keeps 16", "never below 16", "huge ints"],
)
def test_scale_down(
    size: tuple[int, int], bounds: tuple[int | None, int | None], expected: tuple[int, int]
) -> None:
    assert scale_down(size, *bounds) == expected


@pytest.mark.parametrize(
    ("size", "options", "bounds", "expected"),
    [
        ((1000, 500), [(600, 300), (400, 200), (500, 500)], (700, 700), (600, 300)),
        ((1000, 500), [(400, 200), (600, 300)], (700, 700), (600, 300)),
        ((500, 1000), [(200, 100), (100, 200)], (700, 700), (100, 200)),
        ((1000, 500), [(800, 800)], (700, 700), None),
        ((1000, 500), [(0, 10), (300, 300)], (700, 700), (300, 300)),
    ],
    ids=["same ratio", "tie: most pixels", "orientation matters", "none fits", "ignores zeros"],
)
def test_nearest_allowed(
    size: tuple[int, int],
    options: list[tuple[int, int]],
    bounds: tuple[int, int],
    expected: tuple[int, int] | None,
) -> None:
    assert nearest_allowed(size, options, *bounds) == expected
