"""Unit tests of the invisible watermark: API contract, sizes, modes, invisibility, garbage."""

from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from gateway.provenance import _ecc, watermark
from tests.provenance.corpus import gradient, marked_corpus, photo_like

ID = "0123456789ab"


def _psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), np.float64)
    y = np.asarray(b.convert("RGB"), np.float64)
    return float(10 * np.log10(255.0**2 / max(float(np.mean((x - y) ** 2)), 1e-12)))


def _encoded(image: Image.Image, fmt: str, **options: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    buf.seek(0)
    with Image.open(buf) as decoded:
        decoded.load()
        return decoded.copy()


def test_new_watermark_id_is_12_lowercase_hex_digits_and_random() -> None:
    ids = {watermark.new_watermark_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)


def test_algorithm_is_a_reverse_domain_name() -> None:
    assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+\.\d+", watermark.ALGORITHM)


@pytest.mark.parametrize(
    "size",
    [
        (256, 256),
        (512, 384),
        (1024, 1024),
        (2048, 2048),
        (300, 1700),
        (1920, 257),
        (4096, 4096),
        (5000, 3600),  # beyond the usual outputs: still read at its own scale
    ],
)
def test_round_trip_at_every_size_and_aspect(size: tuple[int, int]) -> None:
    image = photo_like(size, 1, "unit") if size[0] * size[1] <= 2**22 else gradient(size, 1, "u")
    marked = watermark.embed(image, ID)
    assert (marked.size, marked.mode) == (image.size, image.mode)
    found = watermark.detect(marked)
    assert found == watermark.Detection(True, ID, found.confidence)
    assert 0.5 < found.confidence <= 1.0


def test_rgba_alpha_is_untouched_and_the_mark_is_found() -> None:
    image = photo_like((512, 512), 2, "unit").convert("RGBA")
    alpha = Image.linear_gradient("L").resize(image.size)
    image.putalpha(alpha)
    marked = watermark.embed(image, ID)
    assert marked.mode == "RGBA"
    assert marked.getchannel("A").tobytes() == alpha.tobytes()
    assert watermark.detect(marked).watermark_id == ID


@pytest.mark.parametrize("mode", ["L", "LA"])
def test_greyscale_modes_are_marked_in_place(mode: str) -> None:
    image = photo_like((384, 384), 3, "unit").convert(mode)
    marked = watermark.embed(image, ID)
    assert marked.mode == mode
    assert watermark.detect(marked).watermark_id == ID


def test_embed_leaves_its_input_alone() -> None:
    image = photo_like((256, 256), 4, "unit")
    before = image.tobytes()
    watermark.embed(image, ID)
    assert image.tobytes() == before


@pytest.mark.parametrize("mode", ["P", "CMYK", "I;16"])
def test_modes_that_cannot_hold_the_mark_are_refused(mode: str) -> None:
    with pytest.raises(ValueError, match="cannot watermark"):
        watermark.embed(Image.new(mode, (256, 256)), ID)


@pytest.mark.parametrize("bad", ["0123456789AB", "0123456789a", "0123456789abc", "zz23456789ab"])
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="12 lowercase hex digits"):
        watermark.embed(Image.new("RGB", (256, 256)), bad)


def test_psnr_stays_above_38_db_on_the_corpus() -> None:
    images = marked_corpus(20)
    psnrs = [_psnr(image, watermark.embed(image, ID)) for image in images]
    assert min(psnrs) >= 38.0, psnrs


def test_flat_areas_change_by_one_grey_level_at_most() -> None:
    # The "no visible pattern" rule: with nothing to mask it, the mark is ±1.
    image = Image.new("RGB", (512, 512), (120, 140, 160))
    delta = np.asarray(watermark.embed(image, ID), np.int16) - 120 - np.array([0, 20, 40])
    assert set(np.unique(delta)) == {-1, 1}


@pytest.mark.parametrize(
    ("fmt", "options"), [("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"quality": 95})]
)
def test_the_mark_survives_the_gateways_own_encodings(fmt: str, options: dict[str, int]) -> None:
    image = marked_corpus(1)[0]
    assert watermark.detect(_encoded(watermark.embed(image, ID), fmt, **options)).watermark_id == ID


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (1, 1)),
        Image.new("RGB", (10, 3000)),
        Image.new("RGB", (71, 71), (200, 10, 10)),
        Image.new("RGB", (512, 512)),
        Image.new("RGB", (512, 512), (255, 255, 255)),
        Image.fromarray(np.random.default_rng(5).integers(0, 256, (512, 640, 3), np.uint8)),
        Image.new("P", (300, 300)),
        Image.new("CMYK", (300, 300)),
        Image.new("I;16", (300, 300)),
        Image.new("1", (300, 300)),
    ],
    ids=["1x1", "sliver", "below-tile", "black", "white", "noise", "P", "CMYK", "I16", "bilevel"],
)
def test_unmarked_and_degenerate_images_read_as_not_found(image: Image.Image) -> None:
    assert watermark.detect(image) == watermark.Detection(False, "", 0.0)


def test_a_tiny_marked_image_does_not_crash() -> None:
    marked = watermark.embed(Image.new("RGB", (16, 16), (90, 90, 90)), ID)
    assert marked.size == (16, 16)
    assert not watermark.detect(marked).found


def test_concurrent_detections_agree() -> None:
    marked = watermark.embed(photo_like((512, 512), 5, "unit"), ID)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(watermark.detect, [marked] * 8))
    assert {r.watermark_id for r in results} == {ID}


def test_the_code_corrects_noisy_soft_values_and_rejects_noise() -> None:
    coded = 2.0 * _ecc.encode(bytes.fromhex(ID)) - 1.0
    rng = np.random.default_rng(0)
    ident, fit = _ecc.decode(coded + rng.normal(0, 0.9, coded.size))
    assert ident == bytes.fromhex(ID)
    assert 0 < fit < 1
    noise_ids = [_ecc.decode(rng.normal(size=_ecc.CODED_BITS))[0] for _ in range(200)]
    assert noise_ids == [None] * 200
