"""The provenance step of every delivered image: watermark, then sign.

The watermark goes into the pixels first and the C2PA manifest is signed over
the watermarked bytes, with the watermark id as the manifest's soft binding:
a copy whose metadata was stripped still carries the id, and the ledger maps
the id back to the request, the image and the manifest.

The work is CPU-bound (numpy, the image codecs, the C2PA library): it runs on
a pool of worker threads, never on the event loop. Those libraries release
the GIL for the heavy parts, so the pool uses the cores.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from gateway.convert import image_facts
from gateway.domain import ImageJob, InputImage
from gateway.fanout import SendBuffer
from gateway.provenance import watermark
from gateway.provenance.devchain import ensure_dev_chain
from gateway.provenance.manifest import Claims, Ingredient, ManifestSigner, read_manifest
from gateway.provenance.settings import ProvenanceSettings
from gateway.provenance.vocabulary import MIME_TYPES


class ProvenanceError(Exception):
    """An image could not be watermarked and signed."""


@dataclass(frozen=True)
class Marked:
    """A delivered image with its provenance."""

    data: bytes = field(repr=False)
    mime: str
    sha256: str
    watermark_id: str = ""
    manifest_json: str = field(default="", repr=False)
    width: int = 0  # 0: unknown (bytes no decoder recognised)
    height: int = 0

    @property
    def signed(self) -> bool:
        return bool(self.manifest_json)


def unmarked(data: bytes) -> Marked:
    """An image delivered as the backend made it (provenance off, or best effort
    failed): its type and size read from the header, its sha256 taken once."""
    mime, width, height = _header(data)
    return Marked(data, mime, hashlib.sha256(data).hexdigest(), width=width, height=height)


@dataclass(frozen=True)
class Origin:
    """Who asked for the image, as the manifest states it."""

    request_id: str
    tenant_id: str


class Marker:
    """Watermarks and signs images on a pool of worker threads."""

    def __init__(
        self,
        signer: ManifestSigner,
        *,
        trust_anchors: bytes | None,
        tenant_key: bytes,
        jpeg_quality: int = 95,
        png_compress_level: int = 3,
        workers: int = 0,
        max_pixels_in_flight: int = 16_777_216,
    ) -> None:
        self._signer = signer
        self.trust_anchors = trust_anchors
        self._tenant_key = tenant_key
        self._jpeg_quality = jpeg_quality
        self._png_compress_level = png_compress_level
        self._pixels = SendBuffer(max_pixels_in_flight)  # a budget, here of pixels
        self._pool = ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 1, thread_name_prefix="provenance"
        )

    @classmethod
    def from_settings(cls, settings: ProvenanceSettings, data_dir: Path) -> Marker:
        """The configured signer, or the development chain under `data_dir`."""
        anchors_file = settings.trust_anchors_file
        if settings.key_file is None or settings.chain_file is None:
            dev = ensure_dev_chain(data_dir / "provenance")
            key_file, chain_file = dev.key_pem, dev.chain_pem
            anchors_file = anchors_file or dev.anchors_pem
        else:
            key_file, chain_file = settings.key_file, settings.chain_file
        signer = ManifestSigner.from_files(
            key_file, chain_file, alg=settings.signing_alg, tsa_url=settings.tsa_url
        )
        # The tenant reference in manifests is keyed by the signing key, so
        # every replica sharing the key writes the same reference per tenant
        # and nobody without the key can map a reference to a tenant id.
        tenant_key = hashlib.sha256(b"titan-tenant-ref\0" + key_file.read_bytes()).digest()
        return cls(
            signer,
            trust_anchors=anchors_file.read_bytes() if anchors_file else None,
            tenant_key=tenant_key,
            jpeg_quality=settings.jpeg_quality,
            png_compress_level=settings.png_compress_level,
            max_pixels_in_flight=settings.max_pixels_in_flight,
            workers=settings.workers,
        )

    def tenant_ref(self, tenant_id: str) -> str:
        """An opaque, stable reference to a tenant (a keyed hash of its id)."""
        digest = hmac.new(self._tenant_key, tenant_id.encode(), hashlib.sha256).hexdigest()
        return "tenant:" + digest[:24]

    async def mark(self, data: bytes, job: ImageJob, index: int, origin: Origin) -> Marked:
        """Watermark and sign one image; raises ProvenanceError if it cannot."""
        claims = Claims(
            model_id=job.model.model_id,
            task=job.task_type.value,
            request_id=origin.request_id,
            image_index=index,
            tenant_ref=self.tenant_ref(origin.tenant_id),
            watermark_id=watermark.new_watermark_id(),
            watermark_alg=watermark.ALGORITHM,
        )
        ingredient = edited_input(job)
        _, width, height = _header(data)
        marked: Marked = await self._bounded(max(1, width * height), self._mark, data,
                                             claims, ingredient)  # fmt: skip
        return marked

    async def run(self, pixels: int, work: Any, *args: object) -> object:
        """Run other provenance work (detection) on the same pool and under
        the same pixel budget (`pixels`: the size of the image it reads)."""
        return await self._bounded(max(1, pixels), work, *args)

    async def _bounded(self, pixels: int, work: Any, *args: object) -> Any:
        await self._pixels.take(pixels)
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(self._pool, work, *args)
        # Given back when the work ends, not when a cancelled caller stops
        # waiting: the memory is held until the thread lets go of it.
        running.add_done_callback(lambda _: self._pixels.give(pixels))
        return await asyncio.shield(running)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _mark(self, data: bytes, claims: Claims, ingredient: InputImage | None) -> Marked:
        try:
            with PILImage.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if fmt not in MIME_TYPES:
                    raise ProvenanceError(f"cannot mark a {fmt or 'unknown'} image")
                img.load()
                marked = watermark.embed(img, claims.watermark_id)
            mime = MIME_TYPES[fmt]
            pixels = self._encode(marked, fmt)
            source = (
                Ingredient(ingredient.data, MIME_TYPES[ingredient.format])
                if ingredient is not None
                else None
            )
            signed = self._signer.sign(pixels, mime, claims, source)
            report = read_manifest(signed, mime, self.trust_anchors)
        except ProvenanceError:
            raise
        except Exception as exc:  # codecs and the C2PA library raise many types
            raise ProvenanceError(f"{type(exc).__name__}: {exc}") from exc
        if report.claims is None or report.state not in ("valid", "untrusted"):
            raise ProvenanceError(f"the signed image does not validate: {report.explanation}")
        return Marked(
            signed,
            mime,
            hashlib.sha256(signed).hexdigest(),
            claims.watermark_id,
            report.claims.manifest_json,
            width=marked.width,
            height=marked.height,
        )

    def _encode(self, img: PILImage.Image, fmt: str) -> bytes:
        out = io.BytesIO()
        if fmt == "JPEG":
            img.save(out, "JPEG", quality=self._jpeg_quality)
        elif fmt == "WEBP":
            img.save(out, "WEBP", quality=self._jpeg_quality)
        else:
            img.save(out, "PNG", compress_level=self._png_compress_level)
        return out.getvalue()


def edited_input(job: ImageJob) -> InputImage | None:
    """The image an edit task starts from (its C2PA ingredient), if any."""
    task = job.task
    for name in ("image", "source_image"):
        value = getattr(task, name, None)
        if isinstance(value, InputImage):
            return value
    images = getattr(task, "images", None)
    if images:
        first = images[0]
        return first if isinstance(first, InputImage) else None
    return None


def _header(data: bytes) -> tuple[str, int, int]:
    """`image_facts`, or ("application/octet-stream", 0, 0) if no decoder knows the bytes."""
    try:
        return image_facts(data)
    except Exception:
        return "application/octet-stream", 0, 0
