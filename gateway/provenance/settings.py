"""Settings of the provenance step: who signs the C2PA manifests, which
signers a detection trusts, and the limits of DetectProvenance."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ProvenanceSettings(BaseModel):
    """Signing key and chain, trust anchors and detection limits.

    Without `key_file` and `chain_file` the gateway signs with a development
    chain it creates under `data_dir/provenance` on first start; its
    certificates say DEVELOPMENT in their names and no C2PA validator
    trusts them unless told to (the gateway trusts its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_file: Path | None = Field(None, description="the signing key (PEM, PKCS#8)")
    chain_file: Path | None = Field(
        None, description="the signing certificate and its intermediates (PEM, leaf first)"
    )
    allow_development_chain: bool = Field(
        False,
        description="sign with the development chain against real Bedrock (backend: bedrock)",
    )
    signing_alg: str = Field("es256", description="es256, es384, es512, ps256, … or ed25519")
    trust_anchors_file: Path | None = Field(
        None,
        description="root certificates (PEM) a manifest's signer must chain to for "
        "DetectProvenance to call it valid; default: the development root when the "
        "development chain signs, else none (every signer then reads as untrusted)",
    )
    tsa_url: str | None = Field(
        None, description="an RFC 3161 time-stamp authority for the signatures (none by default)"
    )
    jpeg_quality: int = Field(
        95, ge=50, le=100, description="quality of the JPEG re-encoded after watermarking"
    )
    png_compress_level: int = Field(
        3,
        ge=0,
        le=9,
        description="zlib level of the PNG re-encoded after watermarking: 1-3 use zlib's "
        "fast strategy, 2-5x faster than 6 on photographic images (a noisy 1.39 MB "
        "1024x1024 PNG: ~80 ms against ~420 ms) for files 8-20 % larger",
    )
    detect_max_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="largest image DetectProvenance accepts"
    )
    detect_max_pixels: int = Field(
        40_000_000, gt=0, description="largest decoded image DetectProvenance accepts"
    )
    max_pixels_in_flight: int = Field(
        16_777_216,
        gt=0,
        description="pixels being watermarked or detected at once, all images together: embedding "
        "peaks at ~35 bytes a pixel (a 4096x4096 image ~590 MiB), so this bounds the "
        "memory provenance takes; an image larger than the budget still goes alone",
    )
    workers: int = Field(
        0,
        ge=0,
        description="threads that watermark and sign images (0: one per CPU); never the event loop",
    )

    @model_validator(mode="after")
    def _pair(self) -> ProvenanceSettings:
        if (self.key_file is None) != (self.chain_file is None):
            raise ValueError("provenance.key_file and provenance.chain_file must be set together")
        return self

    @property
    def development(self) -> bool:
        return self.key_file is None


def signing_problems(settings: ProvenanceSettings, backend: str) -> list[str]:
    """Why `serve` should refuse to start with these provenance settings."""
    problems = []
    if backend == "bedrock" and settings.development and not settings.allow_development_chain:
        problems.append(
            "no provenance signing key is configured: against real Bedrock (backend: bedrock) "
            "the gateway refuses to sign every image with a development chain (each replica "
            "would make its own, and no validator trusts it); set provenance.key_file and "
            "provenance.chain_file (TITAN_GW_PROVENANCE__KEY_FILE, "
            "TITAN_GW_PROVENANCE__CHAIN_FILE), or provenance.allow_development_chain: true "
            "(TITAN_GW_PROVENANCE__ALLOW_DEVELOPMENT_CHAIN=true) to sign with it anyway"
        )
    for name in ("key_file", "chain_file", "trust_anchors_file"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            problems.append(f"provenance.{name} {path} is not a readable file")
    return problems
