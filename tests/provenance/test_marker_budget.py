"""Marking is bounded by pixels in flight, not only by threads: embedding
peaks at ~35 bytes a pixel, so two 4096x4096 upscales at once would take
over a gigabyte. Small images still mark in parallel."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gateway.domain import ImageConfig, ImageJob, Quality, TextToImage
from gateway.provenance.marker import Marker, Origin
from gateway.provenance.settings import ProvenanceSettings
from gateway.registry import load_registry


def _png(side: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((side, side), 40).convert("RGB").save(out, "PNG")
    return out.getvalue()


def _job(side: int) -> ImageJob:
    model = load_registry().get("stability.sd3-5-large-v1:0")
    assert model is not None
    return ImageJob(TextToImage("x"), ImageConfig(1, side, side, 5.0, 1, Quality.STANDARD), model)


async def _peak_in_flight(marker: Marker, monkeypatch: pytest.MonkeyPatch, side: int) -> int:
    mark = marker._mark
    lock, now, peak = threading.Lock(), [0], [0]

    def counted(*args: Any) -> Any:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        try:
            time.sleep(0.05)  # long enough to overlap if allowed to
            return mark(*args)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(marker, "_mark", counted)
    data, job = _png(side), _job(side)
    marked = await asyncio.gather(*(marker.mark(data, job, i, Origin("r", "t")) for i in range(3)))
    assert all(m.watermark_id for m in marked)
    return peak[0]


async def test_images_over_the_pixel_budget_mark_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ProvenanceSettings(max_pixels_in_flight=256 * 256, workers=3)
    marker = Marker.from_settings(settings, tmp_path)
    try:
        assert await _peak_in_flight(marker, monkeypatch, 256) == 1
    finally:
        marker.close()


async def test_small_images_mark_in_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ProvenanceSettings(max_pixels_in_flight=3 * 256 * 256, workers=3)
    marker = Marker.from_settings(settings, tmp_path)
    try:
        assert await _peak_in_flight(marker, monkeypatch, 256) == 3
    finally:
        marker.close()
