"""Signed C2PA manifests: every format signs and reads back, tampering and
stripping are told apart, trust anchors stay per call, and nothing is fetched.

Everything runs against the real c2pa-python (c2pa-rs) and a real development
chain made by `ensure_dev_chain`; no part of the library is faked.
"""

from __future__ import annotations

import io
import socket
import stat
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import c2pa  # type: ignore[import-untyped]
import numpy as np
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from PIL import Image

from gateway.provenance.devchain import DEVELOPMENT_LABEL, DevChain, ensure_dev_chain
from gateway.provenance.manifest import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    Claims,
    Ingredient,
    ManifestError,
    ManifestSigner,
    manifest_definition,
)
from gateway.provenance.reading import (
    DATA_HASH_MISMATCH,
    UNTRUSTED,
    claims_from_json,
    read_manifest,
)
from gateway.provenance.vocabulary import no_network_settings

CLAIMS = Claims(
    model_id="amazon.titan-image-generator-v2:0",
    task="TEXT_IMAGE",
    request_id="req-0001",
    image_index=2,
    tenant_ref="tref-opaque-42",
    watermark_id="wm-3f2a9c",
    watermark_alg="io.github.titan-gateway.tiled-ss.1",
)
FORMATS = [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]


def _image(fmt: str, size: int = 64, seed: int = 1) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> DevChain:
    return ensure_dev_chain(tmp_path_factory.mktemp("provenance"))


@pytest.fixture(scope="module")
def anchors(chain: DevChain) -> bytes:
    return chain.anchors_pem.read_bytes()


@pytest.fixture(scope="module")
def signer(chain: DevChain) -> ManifestSigner:
    return ManifestSigner.from_files(chain.key_pem, chain.chain_pem)


@pytest.mark.parametrize(("fmt", "mime"), FORMATS)
def test_signed_image_reads_back_valid_with_its_claims(
    signer: ManifestSigner, anchors: bytes, fmt: str, mime: str
) -> None:
    source = _image(fmt)
    signed = signer.sign(source, mime, CLAIMS)
    report = read_manifest(signed, mime, anchors)

    assert (report.state, report.failures) == ("valid", ())
    assert report.claims is not None
    claims = report.claims
    assert claims.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert (claims.model_id, claims.task) == (CLAIMS.model_id, CLAIMS.task)
    assert (claims.request_id, claims.image_index) == (CLAIMS.request_id, CLAIMS.image_index)
    assert claims.tenant_ref == CLAIMS.tenant_ref
    assert claims.watermark_id == CLAIMS.watermark_id
    assert claims.watermark_alg == CLAIMS.watermark_alg
    assert claims.generator is not None
    assert claims.generator.startswith("titan-image-gateway ")
    assert claims.signer is not None
    assert DEVELOPMENT_LABEL in claims.signer
    assert not claims.has_ingredient
    # The manifest rides in metadata: the pixels are exactly the ones given.
    assert np.array_equal(_pixels(signed), _pixels(source))


def test_stored_manifest_json_parses_to_the_same_claims(
    signer: ManifestSigner, anchors: bytes
) -> None:
    report = read_manifest(signer.sign(_image("PNG"), "image/png", CLAIMS), "image/png", anchors)
    assert report.claims is not None
    assert claims_from_json(report.claims.manifest_json) == report.claims


@pytest.mark.parametrize(("fmt", "mime"), FORMATS)
def test_edit_names_its_input_as_ingredient(
    signer: ManifestSigner, anchors: bytes, fmt: str, mime: str
) -> None:
    edit = replace(CLAIMS, task="INPAINTING")
    ingredient = Ingredient(_image("JPEG", seed=9), "image/jpeg")
    signed = signer.sign(_image(fmt, seed=3), mime, edit, ingredient)
    report = read_manifest(signed, mime, anchors)

    assert (report.state, report.failures) == ("valid", ())
    assert report.claims is not None
    assert report.claims.has_ingredient
    assert report.claims.digital_source_type == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert report.claims.task == "INPAINTING"


def test_edit_of_a_signed_image_keeps_the_chain_of_manifests(
    signer: ManifestSigner, anchors: bytes
) -> None:
    first = signer.sign(_image("PNG", seed=4), "image/png", CLAIMS)
    second = signer.sign(_image("PNG", seed=5), "image/png", CLAIMS, Ingredient(first, "image/png"))
    report = read_manifest(second, "image/png", anchors)
    assert report.state == "valid"
    assert report.claims is not None
    assert report.claims.manifest_json.count("urn:c2pa:") >= 2


def _edit_png_pixels(data: bytes) -> bytes:
    """Change one pixel byte and re-deflate the image data, keeping every
    other chunk (the manifest's caBX among them) and valid CRCs."""
    chunks, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        chunks.append((data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    raw = bytearray(zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT")))
    raw[len(raw) // 2] ^= 0xFF
    out, wrote_idat = bytearray(data[:8]), False
    for kind, body in chunks:
        if kind == b"IDAT":
            if wrote_idat:
                continue
            kind, body, wrote_idat = b"IDAT", zlib.compress(bytes(raw)), True
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        out += len(body).to_bytes(4, "big") + kind + body + crc
    return bytes(out)


def _edit_jpeg_pixels(data: bytes) -> bytes:
    """Flip a byte in the entropy-coded scan, just before the end marker."""
    edited = bytearray(data)
    edited[data.rindex(b"\xff\xd9") - 64] ^= 0x01
    return bytes(edited)


@pytest.mark.parametrize(
    ("fmt", "mime", "edit"),
    [("PNG", "image/png", _edit_png_pixels), ("JPEG", "image/jpeg", _edit_jpeg_pixels)],
)
def test_pixels_edited_after_signing_read_invalid(
    signer: ManifestSigner, anchors: bytes, fmt: str, mime: str, edit: Callable[[bytes], bytes]
) -> None:
    signed = signer.sign(_image(fmt), mime, CLAIMS)
    report = read_manifest(edit(signed), mime, anchors)

    assert report.state == "invalid"
    assert DATA_HASH_MISMATCH in report.failures
    assert "pixels changed" in report.explanation
    assert report.claims is not None  # what it claimed is still shown
    assert report.claims.request_id == CLAIMS.request_id


def test_signer_outside_the_anchors_reads_untrusted(
    signer: ManifestSigner, anchors: bytes, tmp_path: Path
) -> None:
    other = ensure_dev_chain(tmp_path)
    stranger = ManifestSigner.from_files(other.key_pem, other.chain_pem)
    signed = stranger.sign(_image("PNG"), "image/png", CLAIMS)

    report = read_manifest(signed, "image/png", anchors)
    assert (report.state, report.failures) == ("untrusted", (UNTRUSTED,))
    assert "not among the trusted roots" in report.explanation
    assert read_manifest(signed, "image/png", other.anchors_pem.read_bytes()).state == "valid"


def test_without_anchors_an_intact_manifest_reads_untrusted(signer: ManifestSigner) -> None:
    report = read_manifest(signer.sign(_image("JPEG"), "image/jpeg", CLAIMS), "image/jpeg", None)
    assert (report.state, report.failures) == ("untrusted", (UNTRUSTED,))


@pytest.mark.parametrize(("fmt", "mime"), FORMATS)
def test_resaved_pixels_read_absent(
    signer: ManifestSigner, anchors: bytes, fmt: str, mime: str
) -> None:
    signed = signer.sign(_image(fmt), mime, CLAIMS)
    resaved = io.BytesIO()
    Image.open(io.BytesIO(signed)).save(resaved, fmt)
    report = read_manifest(resaved.getvalue(), mime, anchors)
    assert (report.state, report.claims) == ("absent", None)
    assert "stripped" in report.explanation


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"", "image/png"),
        (b"not an image at all", "image/png"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png"),
        (b"\xff\xd8\xff\xe0" + bytes(range(256)), "image/jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"garbage", "application/x-unknown"),
    ],
)
def test_garbage_reads_absent_without_crashing(data: bytes, mime: str, anchors: bytes) -> None:
    report = read_manifest(data, mime, anchors)
    assert report.state == "absent"
    assert report.claims is None


def test_damaged_manifest_never_crashes_the_reader(signer: ManifestSigner, anchors: bytes) -> None:
    signed = signer.sign(_image("PNG"), "image/png", CLAIMS)
    start = signed.index(b"caBX") + 4
    length = int.from_bytes(signed[start - 8 : start - 4], "big")
    states = set()
    for offset in range(start, start + length, 41):
        damaged = bytearray(signed)
        damaged[offset] ^= 0x5A
        states.add(read_manifest(bytes(damaged), "image/png", anchors).state)
    assert "invalid" in states
    assert states <= {"valid", "invalid", "absent"}


def test_eight_threads_sign_at_once_and_all_validate(
    signer: ManifestSigner, anchors: bytes
) -> None:
    barrier = threading.Barrier(8)

    def sign(index: int) -> bytes:
        source = _image("PNG", size=256, seed=index)
        barrier.wait()
        return signer.sign(source, "image/png", replace(CLAIMS, image_index=index))

    with ThreadPoolExecutor(max_workers=8) as pool:
        signed = list(pool.map(sign, range(8)))
    for index, data in enumerate(signed):
        report = read_manifest(data, "image/png", anchors)
        assert report.state == "valid"
        assert report.claims is not None
        assert report.claims.image_index == index


def test_trust_anchors_do_not_leak_between_concurrent_reads(
    signer: ManifestSigner, anchors: bytes
) -> None:
    signed = signer.sign(_image("PNG"), "image/png", CLAIMS)
    barrier = threading.Barrier(8)

    def read(index: int) -> str:
        barrier.wait()
        return read_manifest(signed, "image/png", anchors if index % 2 else None).state

    with ThreadPoolExecutor(max_workers=8) as pool:
        states = list(pool.map(read, range(16)))
    assert states == ["untrusted", "valid"] * 8


@pytest.fixture
def listener() -> Iterator[tuple[str, list[bytes]]]:
    """A local TCP port that records every connection made to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    hits: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                hits.append(conn.recv(256))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/manifest.c2pa", hits
    stop.set()
    thread.join()
    server.close()


def test_reading_never_fetches_a_remote_manifest(
    chain: DevChain, anchors: bytes, listener: tuple[str, list[bytes]]
) -> None:
    url, hits = listener
    info = c2pa.C2paSignerInfo(
        "es256", chain.chain_pem.read_bytes(), chain.key_pem.read_bytes(), None
    )
    with (
        c2pa.Context.from_dict(no_network_settings()) as context,
        c2pa.Signer.from_info(info) as native,
    ):
        builder = c2pa.Builder(manifest_definition(CLAIMS, "0", edited=False), context=context)
        builder.set_no_embed()
        builder.set_remote_url(url)
        out = io.BytesIO()
        builder.sign(native, "image/png", io.BytesIO(_image("PNG")), out)

    report = read_manifest(out.getvalue(), "image/png", anchors)
    time.sleep(0.3)
    assert (report.state, report.failures) == ("absent", ("manifest.inaccessible",))
    assert hits == []


def test_unusable_keys_fail_at_construction(chain: DevChain, tmp_path: Path) -> None:
    other = ensure_dev_chain(tmp_path)
    with pytest.raises(ManifestError, match="unknown signing algorithm"):
        ManifestSigner.from_files(chain.key_pem, chain.chain_pem, alg="rot13")
    with pytest.raises(ManifestError):  # the key does not match the certificate
        ManifestSigner.from_files(other.key_pem, chain.chain_pem)


def test_bad_trust_anchors_are_an_error_not_a_verdict(signer: ManifestSigner) -> None:
    signed = signer.sign(_image("PNG"), "image/png", CLAIMS)
    with pytest.raises(ManifestError, match="trust anchors"):
        read_manifest(signed, "image/png", b"not a certificate")


def test_dev_chain_is_created_once_and_reused(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        chains = list(pool.map(lambda _: ensure_dev_chain(tmp_path), range(4)))
    first = chains[0]
    again = ensure_dev_chain(tmp_path)
    assert set(chains) == {again}
    contents = [p.read_bytes() for p in (first.key_pem, first.chain_pem, first.anchors_pem)]
    assert [p.read_bytes() for p in (again.key_pem, again.chain_pem, again.anchors_pem)] == contents
    assert stat.S_IMODE(first.key_pem.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["dev-chain"]  # no staging left behind


def test_dev_signer_certificate_is_a_labelled_c2pa_signer(chain: DevChain) -> None:
    certs = x509.load_pem_x509_certificates(chain.chain_pem.read_bytes())
    root = x509.load_pem_x509_certificate(chain.anchors_pem.read_bytes())
    assert len(certs) == 1  # the root is the anchor, not part of the chain
    leaf = certs[0]
    assert DEVELOPMENT_LABEL in leaf.subject.rfc4514_string()
    assert "local use only" in root.subject.rfc4514_string()
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in usages
    assert leaf.issuer == root.subject


@pytest.mark.parametrize(("fmt", "mime"), FORMATS[:2])
def test_timing_per_1024_image(
    signer: ManifestSigner, anchors: bytes, fmt: str, mime: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _image(fmt, size=1024)
    rounds = 5
    started = time.perf_counter()
    signed = [signer.sign(source, mime, CLAIMS) for _ in range(rounds)]
    signed_at = time.perf_counter()
    states = {read_manifest(data, mime, anchors).state for data in signed}
    read_at = time.perf_counter()
    assert states == {"valid"}
    sign_ms = (signed_at - started) / rounds * 1000
    read_ms = (read_at - signed_at) / rounds * 1000
    with capsys.disabled():
        print(
            f"\n1024x1024 {fmt} ({len(source) // 1024} KiB): "
            f"sign {sign_ms:.1f} ms, read {read_ms:.1f} ms"
        )
