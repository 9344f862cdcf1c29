"""Provenance through a real gateway: every delivered image is watermarked
and signed, the ledger keeps its sha256 and watermark id, DetectProvenance
finds a stripped or re-encoded copy's request and manifest for its own
tenant, and nothing at all for another tenant."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from PIL import Image

from gateway.enums import TaskType
from gateway.provenance import watermark
from gateway.provenance.manifest import read_manifest
from policies import hash_key
from tests.auth import DEV_ADMIN_KEY, bearer
from tests.models.requests import request_for
from tests.streams import collect, detail
from tests.test_cli_ops import run_cli
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc
from titan.gateway.v1 import tasks_pb2 as tasks

ACME, GLOBEX = "tgw_acme_provenance", "tgw_globex_provenance"
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _policy(tmp_path: Path, globex_provenance: str = "required") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"""
version: 1
admin_keys: ["{hash_key(DEV_ADMIN_KEY)}"]
tiers:
  t: {{budget: {{daily_usd: 100}}}}
tenants:
  - {{id: acme, tier: t, api_keys: ["{hash_key(ACME)}"]}}
  - {{id: globex, tier: t, api_keys: ["{hash_key(GLOBEX)}"], provenance: {globex_provenance}}}
""",
        encoding="utf-8",
    )
    return path


def _stub(gateway, key: str) -> tuple[grpc.aio.Channel, image_service_pb2_grpc.ImageServiceStub]:
    channel = grpc.aio.insecure_channel(
        gateway.address,
        interceptors=bearer(key),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    return channel, image_service_pb2_grpc.ImageServiceStub(channel)


def _request(
    n: int = 2, prompt: str = "a lighthouse on a cliff at dusk"
) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text=prompt),
        config=tasks.ImageGenerationConfig(number_of_images=n, width=512, height=512, seed=3),
    )


def _reencoded(data: bytes, fmt: str, **save: object) -> bytes:
    """The pixels only, as a metadata-stripping re-upload would keep them."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, fmt, **save)
    return out.getvalue()


async def test_every_image_is_signed_and_watermarked_and_the_ledger_keeps_both(
    make_gateway, tmp_path: Path
) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path))
    channel, images = _stub(gateway, ACME)
    async with channel:
        result = await collect(images.GenerateImages(_request()))
    anchors = gateway.parts.marker.trust_anchors
    records = {r.image_index: r for r in await gateway.ledger.recent_usage("acme")}
    assert sorted(result.images) == [0, 1] == sorted(records)
    for index, image in result.images.items():
        assert image.signed
        assert len(image.watermark_id) > 0
        report = read_manifest(image.data, image.mime_type, anchors)
        assert report.state == "valid", report.explanation
        claims = report.claims
        assert claims is not None
        assert claims.digital_source_type == TRAINED
        assert claims.model_id == image.model_id
        assert claims.task == "TEXT_IMAGE"
        assert claims.request_id == result.accepted.request_id
        assert claims.image_index == index
        assert claims.watermark_id == image.watermark_id
        assert claims.tenant_ref
        assert "acme" not in claims.tenant_ref
        assert not claims.has_ingredient
        found = watermark.detect(Image.open(io.BytesIO(image.data)))
        assert found.found
        assert found.watermark_id == image.watermark_id
        record = records[index]
        assert record.watermark_id == image.watermark_id
        assert record.image_sha256 == image.sha256
        assert record.manifest_json == claims.manifest_json
    assert len({i.watermark_id for i in result.images.values()}) == 2


async def test_detect_finds_a_stripped_or_reencoded_copy_and_recovers_its_manifest(
    make_gateway, tmp_path: Path
) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path))
    channel, images = _stub(gateway, ACME)
    async with channel:
        result = await collect(images.GenerateImages(_request(n=1)))
        image = result.images[0]
        exact = await images.DetectProvenance(pb.DetectProvenanceRequest(image=image.data))
        stripped = await images.DetectProvenance(
            pb.DetectProvenanceRequest(image=_reencoded(image.data, "PNG"))
        )
        jpeg = await images.DetectProvenance(
            pb.DetectProvenanceRequest(image=_reencoded(image.data, "JPEG", quality=75))
        )
    assert exact.manifest.state == pb.ManifestCheck.STATE_VALID
    assert exact.manifest.claims.request_id == result.accepted.request_id
    assert exact.watermark.found
    assert exact.watermark.watermark_id == image.watermark_id
    assert exact.record.exact_copy
    assert exact.record.image_sha256 == image.sha256
    for copy in (stripped, jpeg):
        assert copy.manifest.state == pb.ManifestCheck.STATE_ABSENT
        assert copy.watermark.found
        assert copy.watermark.watermark_id == image.watermark_id
        assert 0 < copy.watermark.confidence <= 1
        assert copy.record.request_id == result.accepted.request_id
        assert copy.record.image_index == 0
        assert not copy.record.exact_copy
        # The manifest the image was signed with, recovered from the ledger.
        assert copy.record.manifest.request_id == result.accepted.request_id
        assert copy.record.manifest.watermark_id == image.watermark_id
        assert copy.record.manifest.digital_source_type == TRAINED


async def test_another_tenants_image_reads_exactly_like_an_unmarked_one(
    make_gateway, tmp_path: Path
) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path))
    acme_channel, acme = _stub(gateway, ACME)
    globex_channel, globex = _stub(gateway, GLOBEX)
    async with acme_channel, globex_channel:
        theirs = (await collect(acme.GenerateImages(_request(n=1)))).images[0]
        mine = (await collect(globex.GenerateImages(_request(n=1, prompt="a red fox")))).images[0]
        stripped_theirs = _reencoded(theirs.data, "PNG")
        unmarked = _reencoded(mine.data, "PNG")
        # An unmarked image of the same size for the "nothing there" answer.
        blank = io.BytesIO()
        Image.new("RGB", (512, 512), (90, 120, 150)).save(blank, "PNG")
        foreign = await globex.DetectProvenance(pb.DetectProvenanceRequest(image=stripped_theirs))
        nothing = await globex.DetectProvenance(pb.DetectProvenanceRequest(image=blank.getvalue()))
        own = await globex.DetectProvenance(pb.DetectProvenanceRequest(image=unmarked))
    assert foreign == nothing  # the very same answer, field for field
    assert not foreign.watermark.found
    assert not foreign.HasField("record")
    assert own.watermark.found
    assert own.record.request_id


async def test_a_tenant_with_provenance_off_gets_unmarked_images(
    make_gateway, tmp_path: Path
) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path, globex_provenance="off"))
    channel, images = _stub(gateway, GLOBEX)
    async with channel:
        result = await collect(images.GenerateImages(_request(n=1)))
    image = result.images[0]
    assert not image.signed
    assert image.watermark_id == ""
    assert read_manifest(image.data, image.mime_type, None).state == "absent"
    [record] = await gateway.ledger.recent_usage("globex")
    assert record.watermark_id == ""
    assert record.image_sha256 == image.sha256


@pytest.mark.parametrize("mode", ["required", "best_effort"])
async def test_a_signer_failure_fails_the_image_when_required_and_not_when_best_effort(
    make_gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path, globex_provenance=mode))

    def broken(*_args: object, **_kwargs: object) -> bytes:
        raise RuntimeError("the signing key is unreadable")

    monkeypatch.setattr(gateway.parts.marker._signer, "sign", broken)
    channel, images = _stub(gateway, GLOBEX)
    async with channel:
        result = await collect(images.GenerateImages(_request(n=2)))
    records = await gateway.ledger.recent_usage("globex")
    if mode == "required":
        assert result.images == {}
        assert {f.reason for f in result.failures.values()} == {pb.FAILURE_REASON_PROVENANCE}
        assert "not charged" in result.failures[0].message
        assert result.completed.cost_micros == 0
        assert records == []
    else:
        assert sorted(result.images) == [0, 1]
        assert all(not i.signed and i.watermark_id == "" for i in result.images.values())
        assert result.completed.cost_micros == sum(r.cost_micros for r in records) > 0


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "must not be empty"),
        (b"\x89PNG\r\n\x1a\n garbage", "is not a PNG, JPEG or WebP image"),
        (b"GIF89a" + b"\x00" * 64, "is not a PNG, JPEG or WebP image"),
    ],
    ids=["empty", "garbage", "gif"],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    make_gateway, tmp_path: Path, data: bytes, rule: str
) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path))
    channel, images = _stub(gateway, ACME)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await images.DetectProvenance(pb.DetectProvenanceRequest(image=data))
        # Still serving.
        assert (await collect(images.GenerateImages(_request(n=1)))).completed.images_delivered
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = detail(caught.value, error_details_pb2.BadRequest).field_violations
    assert violation.field == "image"
    assert rule in violation.description


async def test_an_image_over_the_size_limit_is_refused(make_gateway, tmp_path: Path) -> None:
    gateway = await make_gateway(
        policy_file=_policy(tmp_path), provenance={"detect_max_bytes": 1000}
    )
    channel, images = _stub(gateway, ACME)
    async with channel:
        data = (await collect(images.GenerateImages(_request(n=1)))).images[0].data
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await images.DetectProvenance(pb.DetectProvenanceRequest(image=data))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 1000 bytes" in caught.value.details()


async def test_the_detect_command_prints_the_request_of_a_stripped_copy(
    make_gateway, tmp_path: Path
) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path))
    channel, images = _stub(gateway, ACME)
    async with channel:
        result = await collect(images.GenerateImages(_request(n=1)))
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(_reencoded(result.images[0].data, "JPEG", quality=75))
    code, out, err = await run_cli(
        "detect", str(copy), "--target", gateway.address, "--api-key", ACME
    )
    assert code == 0, err
    assert result.accepted.request_id in out
    assert "recovered from the ledger" in out
    code, out, _ = await run_cli(
        "detect", str(copy), "--target", gateway.address, "--api-key", GLOBEX
    )
    assert code == 1  # nothing of globex's
    assert result.accepted.request_id not in out


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [(tasks.OUTPUT_FORMAT_JPEG, "image/jpeg"), (tasks.OUTPUT_FORMAT_WEBP, "image/webp")],
    ids=["jpeg", "webp"],
)
async def test_jpeg_and_webp_outputs_carry_both_manifest_and_watermark(
    make_gateway, tmp_path: Path, fmt: int, mime: str
) -> None:
    gateway = await make_gateway(policy_file=_policy(tmp_path))
    # An Image Service (they offer PNG, JPEG and WebP): an edit, with an ingredient.
    request = request_for(TaskType.SEARCH_AND_RECOLOR, "stability.stable-image-search-recolor-v1:0")
    request.config.output_format = fmt
    channel, images = _stub(gateway, ACME)
    async with channel:
        image = (await collect(images.GenerateImages(request))).images[0]
        stripped = await images.DetectProvenance(
            pb.DetectProvenanceRequest(image=_reencoded(image.data, "PNG"))
        )
    assert image.mime_type == mime
    assert image.signed
    report = read_manifest(image.data, mime, gateway.parts.marker.trust_anchors)
    assert report.state == "valid", report.explanation
    assert report.claims is not None
    assert report.claims.watermark_id == image.watermark_id
    assert report.claims.has_ingredient
    assert stripped.watermark.watermark_id == image.watermark_id
