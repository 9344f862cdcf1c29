"""The PNG: added p50 latency against direct (log) by concurrency (log), one
line per image x route with provenance, and the issue's targets marked."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bench.overhead.callers import route_of
from bench.overhead.cells import IMAGES, with_added
from bench.overhead.targets import LIMITS

WIDTH, HEIGHT, LEFT, TOP, RIGHT, BOTTOM = 900, 560, 80, 50, 250, 60
LO_MS, HI_MS = 0.1, 100_000.0
GRID_MS = (0.1, 1, 10, 100, 1000, 10_000, 100_000)
COLOURS = {
    ("small", "off"): (31, 119, 180),
    ("small", "required"): (174, 199, 232),
    ("large", "off"): (214, 39, 40),
    ("large", "required"): (255, 152, 150),
}
Point = tuple[float, float]


@dataclass
class Canvas:
    """The image being drawn, and where a (concurrency, ms) point falls on it."""

    levels: list[int]
    image: Image.Image = field(default_factory=lambda: Image.new("RGB", (WIDTH, HEIGHT), "white"))
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont = field(
        default_factory=ImageFont.load_default
    )

    def __post_init__(self) -> None:
        self.draw = ImageDraw.Draw(self.image)

    def x(self, conc: int) -> float:
        span = math.log(max(self.levels) / min(self.levels)) or 1
        return LEFT + (WIDTH - LEFT - RIGHT) * math.log(conc / min(self.levels)) / span

    def y(self, ms: float) -> float:
        ms = min(max(ms, LO_MS), HI_MS)
        return (
            HEIGHT
            - BOTTOM
            - (HEIGHT - TOP - BOTTOM) * math.log(ms / LO_MS) / math.log(HI_MS / LO_MS)
        )

    def text(self, xy: Point, text: str, anchor: str | None = None, fill: Any = "black") -> None:
        self.draw.text(xy, text, fill=fill, font=self.font, anchor=anchor)


def plot(result: dict[str, Any], path: Path) -> None:
    """Added p50 (log) against concurrency (log), one line per image x route."""
    cells = with_added(result["cells"])
    canvas = Canvas(sorted({c["concurrency"] for c in cells}))
    _axes(canvas)
    for n, ((image, tenant), colour) in enumerate(COLOURS.items()):
        route = route_of(tenant)
        points = [
            (canvas.x(c["concurrency"]), canvas.y(c["added_p50_ms"]))
            for c in cells
            if c["image"] == image and c["route"] == route and c["added_p50_ms"] is not None
        ]
        _series(canvas, points, colour, n, f"{IMAGES[image]}, provenance {tenant}")
    _targets(canvas)
    note = "points on the 0.1 line: added <= 0.1 ms (the direct caller decodes in Python too)"
    canvas.text((LEFT, HEIGHT - 8), note, anchor="ls", fill=(90, 90, 90))
    canvas.image.save(path, optimize=True)


def _axes(canvas: Canvas) -> None:
    draw = canvas.draw
    draw.rectangle((LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM), outline="black")
    for ms in GRID_MS:
        draw.line((LEFT, canvas.y(ms), WIDTH - RIGHT, canvas.y(ms)), fill=(225, 225, 225))
        canvas.text((LEFT - 8, canvas.y(ms)), f"{ms:g}", anchor="rm")
    for conc in canvas.levels:
        canvas.text((canvas.x(conc), HEIGHT - BOTTOM + 8), str(conc), anchor="mt")
    canvas.text((WIDTH / 2 - RIGHT / 2, HEIGHT - 32), "concurrency", anchor="mm")
    canvas.text((LEFT, 20), "added p50 latency vs direct to the stand-in (ms, log)")


def _series(canvas: Canvas, points: list[Point], colour: Any, n: int, name: str) -> None:
    """One line with its dots, and its entry (the `n`th) in the legend."""
    draw = canvas.draw
    if len(points) > 1:
        draw.line(points, fill=colour, width=3)
    for px, py in points:
        draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour)
    ly = TOP + 20 + 22 * n
    draw.line((WIDTH - RIGHT + 15, ly, WIDTH - RIGHT + 45, ly), fill=colour, width=3)
    canvas.text((WIDTH - RIGHT + 52, ly), name, anchor="lm")


def _targets(canvas: Canvas) -> None:
    """A cross at each added-p50 limit of the 21 KB image, and its legend entry."""
    for t in LIMITS:
        if t.key == "added_p50_ms" and t.image == "small" and t.concurrency in canvas.levels:
            cx, cy = canvas.x(t.concurrency), canvas.y(t.limit)
            canvas.draw.line((cx - 6, cy - 6, cx + 6, cy + 6), fill="black", width=2)
            canvas.draw.line((cx - 6, cy + 6, cx + 6, cy - 6), fill="black", width=2)
    canvas.text(
        (WIDTH - RIGHT + 15, TOP + 20 + 22 * len(COLOURS)), "x  target (21 KB)", anchor="lm"
    )
