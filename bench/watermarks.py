"""Invisible watermark candidates, measured on one corpus and one set of transforms.

Runs every candidate it can load: our tiled spread spectrum
(`gateway/provenance/watermark.py`), Adobe's TrustMark and the three methods
of invisible-watermark (imwatermark). The project venv has only ours; the
others need their own environment, e.g.

    PYTHONPATH=/work/main /tmp/pv/bin/python -m bench.watermarks

Each candidate marks the same 50 images (`tests/provenance/corpus.py`);
each marked image goes through every transform (`tests/provenance/
transforms.py`) and counts as detected only if the candidate reads back
exactly the id it was given. The library candidates carry 32 bits, a 16-bit
id and a CRC-16 (rivaGan can carry no more), so "found" means the same for
all: the check passes. 50 other, unmarked images count false positives.
"""

from __future__ import annotations

import argparse
import binascii
import contextlib
import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from tests.provenance.corpus import clean_corpus, marked_corpus, photo_like
from tests.provenance.transforms import TRANSFORMS


class Marker(Protocol):
    """What the bench needs from a candidate."""

    def new_id(self, index: int) -> str: ...
    def embed(self, image: Image.Image, ident: str) -> Image.Image: ...
    def detect(self, image: Image.Image) -> str | None: ...


@dataclass(frozen=True)
class Candidate:
    name: str
    footprint: str
    load: Callable[[], Marker]


class Ours:
    """gateway.provenance.watermark: 48-bit id, 24-bit check; the robustness test's ids."""

    def __init__(self) -> None:
        from gateway.provenance import watermark

        self._wm = watermark

    def new_id(self, index: int) -> str:
        return hashlib.sha256(f"robustness-{index}".encode()).hexdigest()[:12]

    def embed(self, image: Image.Image, ident: str) -> Image.Image:
        return self._wm.embed(image, ident)

    def detect(self, image: Image.Image) -> str | None:
        found = self._wm.detect(image)
        return found.watermark_id if found.found else None


class ImWatermark:
    """invisible-watermark on RGB as BGR arrays; alpha is put back untouched."""

    def __init__(self, method: str) -> None:
        from imwatermark import (  # type: ignore[import-not-found, unused-ignore]
            WatermarkDecoder,
            WatermarkEncoder,
        )

        if method == "rivaGan":
            WatermarkEncoder.loadModel()
        self._method, self._encoder_type, self._decoder = method, WatermarkEncoder, WatermarkDecoder
        self.embed(photo_like((256, 256), 0, "probe"), "0000")  # fail here, not mid-run

    def new_id(self, index: int) -> str:
        return hashlib.sha256(f"bench-{index}".encode()).hexdigest()[:4]

    def embed(self, image: Image.Image, ident: str) -> Image.Image:
        raw = bytes.fromhex(ident)
        payload = raw + binascii.crc_hqx(raw, 0xFFFF).to_bytes(2, "big")
        encoder = self._encoder_type()
        encoder.set_watermark("bits", np.unpackbits(np.frombuffer(payload, np.uint8)).tolist())
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        marked = Image.fromarray(
            np.ascontiguousarray(encoder.encode(bgr, self._method)[:, :, ::-1])
        )
        if image.mode == "RGBA":
            marked.putalpha(image.getchannel("A"))
        return marked

    def detect(self, image: Image.Image) -> str | None:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        try:
            bits = self._decoder("bits", 32).decode(bgr, self._method)
        except RuntimeError:  # smaller than 256x256
            return None
        raw = np.packbits(np.asarray(bits, np.uint8)).tobytes()
        intact = binascii.crc_hqx(raw[:2], 0xFFFF) == int.from_bytes(raw[2:], "big")
        return raw[:2].hex() if intact else None


class TrustMarkQ:
    """Adobe TrustMark, variant Q (the C2PA-recommended default)."""

    def __init__(self) -> None:
        from trustmark import TrustMark  # type: ignore[import-not-found, unused-ignore]

        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            self._tm = TrustMark(verbose=False, model_type="Q")
        try:
            self.embed(photo_like((256, 256), 0, "probe"), "000000000000")
        except Exception as exc:  # it reports a failed download on stdout and goes on
            errors = [line for line in log.getvalue().splitlines() if "Error" in line]
            raise RuntimeError(f"{type(exc).__name__}: {exc}; {errors[:1]}") from exc

    def new_id(self, index: int) -> str:
        return hashlib.sha256(f"bench-{index}".encode()).hexdigest()[:12]

    def embed(self, image: Image.Image, ident: str) -> Image.Image:
        marked: Image.Image = self._tm.encode(image.convert("RGB"), ident, MODE="text")
        if image.mode == "RGBA":
            marked.putalpha(image.getchannel("A"))
        return marked

    def detect(self, image: Image.Image) -> str | None:
        secret, present, _ = self._tm.decode(image.convert("RGB"), MODE="text")
        return str(secret) if present else None


CANDIDATES = (
    Candidate("tiled-ss (ours)", "numpy + Pillow (already dependencies)", Ours),
    Candidate("TrustMark Q", "torch + torchvision + lightning; 5.8 GB venv", TrustMarkQ),
    Candidate("imwatermark dwtDct", "opencv + PyWavelets + torch", lambda: ImWatermark("dwtDct")),
    Candidate("imwatermark dwtDctSvd", "as dwtDct", lambda: ImWatermark("dwtDctSvd")),
    Candidate("imwatermark rivaGan", "as dwtDct + onnxruntime", lambda: ImWatermark("rivaGan")),
)


@dataclass
class Result:
    rates: dict[str, float]
    false_positives: int
    psnr_min: float
    psnr_mean: float
    embed_ms: float
    detect_ms: float


def measure(marker: Marker, count: int) -> Result:
    """Detection rate per transform, false positives, PSNR and 1024x1024 timings."""
    images = marked_corpus(count)
    ids = [marker.new_id(i) for i in range(count)]
    marked = [marker.embed(image, ident) for image, ident in zip(images, ids, strict=True)]
    rates = {
        name: sum(marker.detect(transform(m)) == i for m, i in zip(marked, ids, strict=True))
        / count
        for name, transform in TRANSFORMS
    }
    false_positives = sum(marker.detect(image) is not None for image in clean_corpus(count))
    psnrs = [psnr(a, b) for a, b in zip(images, marked, strict=True)]
    embed_ms, detect_ms = timings(marker)
    return Result(rates, false_positives, min(psnrs), float(np.mean(psnrs)), embed_ms, detect_ms)


def psnr(original: Image.Image, marked: Image.Image) -> float:
    """PSNR in dB over the colour channels."""
    a = np.asarray(original.convert("RGB"), np.float64)
    b = np.asarray(marked.convert("RGB"), np.float64)
    return float(10 * np.log10(255.0**2 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def timings(marker: Marker, repeats: int = 3) -> tuple[float, float]:
    """Mean ms to embed into, and to detect in, one 1024x1024 picture."""
    image = photo_like((1024, 1024), 7, "timing")
    ident = marker.new_id(0)
    marked = marker.embed(image, ident)  # warm-up (model load, caches)
    start = time.perf_counter()
    for _ in range(repeats):
        marked = marker.embed(image, ident)
    middle = time.perf_counter()
    for _ in range(repeats):
        marker.detect(marked)
    end = time.perf_counter()
    return (middle - start) / repeats * 1e3, (end - middle) / repeats * 1e3


def run_bench(seconds: float, count: int = 50) -> None:
    """Print the candidate x transform table (`seconds` is unused: the corpus sets the work)."""
    del seconds
    names = [name for name, _ in TRANSFORMS]
    print("| Candidate | " + " | ".join(names) + " | FP | PSNR min/mean | embed ms | detect ms |")
    print("|---" * (len(names) + 5) + "|")
    for candidate in CANDIDATES:
        try:
            marker = candidate.load()
        except Exception as exc:  # ImportError, or a model that cannot load
            print(f"| {candidate.name} | not runnable: {type(exc).__name__}: {exc} |")
            continue
        r = measure(marker, count)
        cells = [f"{100 * r.rates[n]:.0f} %" for n in names]
        print(
            f"| {candidate.name} | " + " | ".join(cells) + f" | {r.false_positives}/{count} | "
            f"{r.psnr_min:.1f}/{r.psnr_mean:.1f} dB | {r.embed_ms:.0f} | {r.detect_ms:.0f} |"
        )
    print("\nInstall footprint:")
    for candidate in CANDIDATES:
        print(f"  {candidate.name}: {candidate.footprint}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50, help="images marked (and unmarked)")
    run_bench(0.0, parser.parse_args().count)


if __name__ == "__main__":
    main()
