"""DetectProvenance: what an image carries, and where it came from.

Two independent checks run on a worker thread: the C2PA manifest embedded in
the bytes (present, valid, what it claims or why it fails) and the invisible
watermark in the pixels. A watermark id is then looked up in the ledger; only
an image of the caller's own tenant is reported (its request, image and the
manifest it was signed with, which a stripped copy no longer carries). A
foreign or unknown id reads exactly like no watermark at all: same answer,
same fields, one ledger lookup either way.

The manifest check reports only what the bytes themselves carry (anyone
holding the file can read its manifest with any C2PA tool); nothing from the
ledger reaches a caller about another tenant's images.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image as PILImage

from gateway.errors import FieldViolation, InvalidRequest
from gateway.ledger import Ledger, UsageRecord
from gateway.provenance import watermark
from gateway.provenance.manifest import ManifestReport, ReadClaims, claims_from_json, read_manifest
from gateway.provenance.marker import Marker
from gateway.provenance.settings import ProvenanceSettings
from gateway.provenance.vocabulary import MIME_TYPES
from titan.gateway.v1 import image_service_pb2 as pb

_STATES = {
    "absent": pb.ManifestCheck.STATE_ABSENT,
    "valid": pb.ManifestCheck.STATE_VALID,
    "invalid": pb.ManifestCheck.STATE_INVALID,
    "untrusted": pb.ManifestCheck.STATE_UNTRUSTED,
}


@dataclass(frozen=True)
class _Findings:
    manifest: ManifestReport
    mark: watermark.Detection


class Detector:
    """Answers DetectProvenance for one tenant at a time."""

    def __init__(self, marker: Marker, ledger: Ledger, settings: ProvenanceSettings) -> None:
        self._marker = marker
        self._ledger = ledger
        self._max_bytes = settings.detect_max_bytes
        self._max_pixels = settings.detect_max_pixels

    async def detect(self, tenant_id: str, data: bytes) -> pb.DetectProvenanceResponse:
        mime, pixels = self._checked(data)
        found = await self._marker.run(pixels, self._examine, data, mime)
        assert isinstance(found, _Findings)
        response = pb.DetectProvenanceResponse(
            manifest=manifest_check(found.manifest),
            watermark=pb.WatermarkCheck(algorithm=watermark.ALGORITHM),
        )
        # One lookup whatever was found, so no answer takes measurably longer.
        looked_up = found.mark.watermark_id if found.mark.found else watermark.new_watermark_id()
        record = await self._ledger.find_watermark(looked_up)
        if not found.mark.found or record is None or record.tenant != tenant_id:
            return response  # foreign or unknown: exactly like no watermark
        response.watermark.found = True
        response.watermark.watermark_id = found.mark.watermark_id
        response.watermark.confidence = found.mark.confidence
        response.record.CopyFrom(provenance_record(record, data))
        return response

    def _checked(self, data: bytes) -> tuple[str, int]:
        """The image's MIME type and pixel count, or INVALID_ARGUMENT naming
        the rule it broke."""
        if not data:
            raise _bad("must not be empty")
        if len(data) > self._max_bytes:
            raise _bad(f"must be at most {self._max_bytes} bytes (got {len(data)})")
        try:
            with PILImage.open(io.BytesIO(data)) as img:
                fmt, width, height = img.format or "", img.width, img.height
        except Exception as exc:
            raise _bad("is not a PNG, JPEG or WebP image") from exc
        if fmt not in MIME_TYPES:
            raise _bad(f"must be a PNG, JPEG or WebP image (got {fmt or 'unknown'})")
        if width * height > self._max_pixels:
            raise _bad(f"must have at most {self._max_pixels} pixels (got {width}x{height})")
        return MIME_TYPES[fmt], width * height

    def _examine(self, data: bytes, mime: str) -> _Findings:
        report = read_manifest(data, mime, self._marker.trust_anchors)
        try:
            with PILImage.open(io.BytesIO(data)) as img:
                img.load()
                mark = watermark.detect(img)
        except Exception:  # a header that decodes but pixels that do not
            mark = watermark.Detection(found=False, watermark_id="", confidence=0.0)
        return _Findings(report, mark)


def manifest_check(report: ManifestReport) -> pb.ManifestCheck:
    check = pb.ManifestCheck(
        state=_STATES[report.state],
        failures=list(report.failures),
        explanation=report.explanation,
    )
    if report.claims is not None:
        check.claims.CopyFrom(manifest_claims(report.claims))
    return check


def manifest_claims(claims: ReadClaims) -> pb.ManifestClaims:
    """The claims as the API carries them; what a manifest does not state is empty."""
    return pb.ManifestClaims(
        digital_source_type=claims.digital_source_type or "",
        model_id=claims.model_id or "",
        task=claims.task or "",
        request_id=claims.request_id or "",
        image_index=claims.image_index or 0,
        tenant_ref=claims.tenant_ref or "",
        generator=claims.generator or "",
        watermark_id=claims.watermark_id or "",
        has_ingredient=claims.has_ingredient,
        signer=claims.signer or "",
        manifest_json=claims.manifest_json,
    )


def provenance_record(record: UsageRecord, data: bytes) -> pb.ProvenanceRecord:
    found = pb.ProvenanceRecord(
        request_id=record.request_id,
        image_index=record.image_index,
        model_id=record.model,
        task=record.task,
        image_sha256=record.image_sha256,
        exact_copy=hashlib.sha256(data).hexdigest() == record.image_sha256,
    )
    if record.manifest_json:
        found.manifest.CopyFrom(manifest_claims(claims_from_json(record.manifest_json)))
    return found


def _bad(rule: str) -> InvalidRequest:
    return InvalidRequest([FieldViolation("image", f"image {rule}")])
