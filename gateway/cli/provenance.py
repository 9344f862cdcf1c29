"""`detect`: what an image carries (C2PA manifest, watermark) and, for your
own images, which request produced it.

python -m gateway detect picture.jpg [--json]

Exit 0 when the image carries the gateway's provenance (a manifest that
validates, or a watermark of your tenant), 1 when it carries none, 2 when
the request failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli.client import add_api_key, add_target
from gateway.cli.ops import Subparsers, call
from gateway.cli.output import print_json
from titan.gateway.v1 import image_service_pb2 as pb

_STATE = {
    pb.ManifestCheck.STATE_ABSENT: "absent",
    pb.ManifestCheck.STATE_VALID: "valid",
    pb.ManifestCheck.STATE_INVALID: "INVALID",
    pb.ManifestCheck.STATE_UNTRUSTED: "valid, but the signer is not trusted",
}


def add_detect_command(sub: Subparsers) -> None:
    cmd = sub.add_parser(
        "detect",
        help="check an image's provenance: C2PA manifest, watermark, and its request",
        description="DetectProvenance: the image's C2PA manifest and invisible watermark; "
        "for your own images, the request and image that produced it.",
    )
    cmd.add_argument("image", type=Path, help="a PNG, JPEG or WebP file")
    add_target(cmd)
    add_api_key(cmd)
    cmd.set_defaults(run=run_detect)


def run_detect(args: argparse.Namespace) -> int:
    try:
        data = args.image.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.image}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    found = call(args, lambda gateway: gateway.detect_provenance(data))
    if found is None:
        return 2
    if args.json:
        print_json(found)
    else:
        print_detection(found)
    carries = found.manifest.state == pb.ManifestCheck.STATE_VALID or found.watermark.found
    return 0 if carries else 1


def print_detection(found: pb.DetectProvenanceResponse) -> None:
    manifest, mark = found.manifest, found.watermark
    lines = [("manifest", _STATE.get(manifest.state, "unknown"))]
    if manifest.explanation:
        lines.append(("", manifest.explanation))
    lines += [("failure", code) for code in manifest.failures]
    if manifest.HasField("claims"):
        lines += _claims(manifest.claims)
    if mark.found:
        lines.append(("watermark", f"{mark.watermark_id} (confidence {mark.confidence:.2f})"))
    else:
        lines.append(("watermark", "none of yours"))
    if found.HasField("record"):
        rec = found.record
        lines.append(("request", f"{rec.request_id} image {rec.image_index}"))
        lines.append(("made by", f"{rec.model_id} ({rec.task})"))
        copy = "yes" if rec.exact_copy else "no (re-encoded, resized, cropped or stripped)"
        lines.append(("exact copy", copy))
        if rec.HasField("manifest") and not manifest.HasField("claims"):
            lines.append(("signed with", "the manifest below (recovered from the ledger)"))
            lines += _claims(rec.manifest)
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label.ljust(width)}  {value}")


def _claims(claims: pb.ManifestClaims) -> list[tuple[str, str]]:
    pairs = [
        ("source type", claims.digital_source_type.rsplit("/", 1)[-1]),
        ("model", claims.model_id),
        ("task", claims.task),
        ("request", f"{claims.request_id} image {claims.image_index}"),
        ("tenant ref", claims.tenant_ref),
        ("generator", claims.generator),
        ("signer", claims.signer),
        ("soft binding", claims.watermark_id),
    ]
    if claims.has_ingredient:
        pairs.append(("ingredient", "an input image (edit)"))
    return [(label, value) for label, value in pairs if value]
