"""Signed C2PA manifests for the images the gateway delivers.

Every delivered image carries a manifest, signed with c2pa-python (the
Content Authenticity Initiative's bindings to c2pa-rs), that says three
things: the image was made by a trained algorithm (`c2pa.actions.v2`, with
the IPTC digital source type; an edit also names its input as a `parentOf`
ingredient), what the gateway knows about it (model, task, request, index,
an opaque tenant reference, in `GENERATION_LABEL`), and the id of the
invisible watermark as a C2PA soft binding, so a copy whose manifest was
stripped can still be matched to it.

Nothing native is shared between calls. c2pa-python has a process-wide,
deprecated `load_settings` and per-instance `Context`/`Settings`; each call
here builds its own `Context` and `Signer` (together well under a
millisecond), so workers sign in parallel and one caller's trust anchors
never reach another. `vocabulary.no_network_settings` switches off every
fetch c2pa-rs could make while signing or reading: OCSP, remote manifests,
and any host at all. Reading lives in `reading` and is re-exported here, so
callers import the whole API from this module.
"""

from __future__ import annotations

import importlib.metadata
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa  # type: ignore[import-untyped]  # c2pa-python ships no py.typed
from PIL import Image

from gateway.provenance.reading import ManifestReport, ReadClaims, claims_from_json, read_manifest
from gateway.provenance.vocabulary import (
    ACTIONS_LABEL,
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    GENERATION_LABEL,
    GENERATOR_NAME,
    SOFT_BINDING_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    ManifestError,
    no_network_settings,
)

__all__ = [
    "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA",
    "TRAINED_ALGORITHMIC_MEDIA",
    "Claims",
    "Ingredient",
    "ManifestError",
    "ManifestReport",
    "ManifestSigner",
    "ReadClaims",
    "claims_from_json",
    "read_manifest",
]

# The label that ties the `c2pa.opened` action to the ingredient it opens.
_INGREDIENT_ID = "input"
_ALGORITHMS = frozenset(alg.name.lower() for alg in c2pa.C2paSigningAlg)


@dataclass(frozen=True)
class Claims:
    """What the gateway asserts about one image it delivers.

    `tenant_ref` is an opaque string the caller supplies, never the tenant
    id: a manifest travels with the image to anyone."""

    model_id: str
    task: str
    request_id: str
    image_index: int
    tenant_ref: str
    watermark_id: str
    watermark_alg: str


@dataclass(frozen=True)
class Ingredient:
    """The input image of an edit (inpainting, variation, upscale, …)."""

    data: bytes
    mime: str


def generator_version() -> str:
    """The installed gateway's version, or "0+unknown" when run from a tree."""
    try:
        return importlib.metadata.version(GENERATOR_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class ManifestSigner:
    """Signs images with one key and chain; safe to call from many threads.

    It keeps only immutable bytes; every `sign` call makes its own native
    objects, so there is nothing to lock."""

    def __init__(
        self, key_pem: bytes, chain_pem: bytes, alg: str = "es256", tsa_url: str | None = None
    ) -> None:
        if alg.lower() not in _ALGORITHMS:
            raise ManifestError(f"unknown signing algorithm {alg!r}; one of {sorted(_ALGORITHMS)}")
        self._key = key_pem
        self._chain = chain_pem
        self._alg = alg.lower()
        self._tsa_url = tsa_url
        self._version = generator_version()
        self._probe()

    @classmethod
    def from_files(
        cls, key_pem: Path, chain_pem: Path, alg: str = "es256", tsa_url: str | None = None
    ) -> ManifestSigner:
        """Load a PEM private key and a PEM chain (signing certificate first)."""
        return cls(key_pem.read_bytes(), chain_pem.read_bytes(), alg, tsa_url)

    def sign(
        self, data: bytes, mime: str, claims: Claims, ingredient: Ingredient | None = None
    ) -> bytes:
        """Return `data` (same format) with a signed manifest embedded."""
        definition = manifest_definition(claims, self._version, edited=ingredient is not None)
        try:
            with c2pa.Context.from_dict(no_network_settings()) as context, self._signer() as signer:
                builder = c2pa.Builder(definition, context=context)
                with builder:
                    if ingredient is not None:
                        _add_ingredient(builder, ingredient)
                    out = io.BytesIO()
                    builder.sign(signer, mime, io.BytesIO(data), out)
        except c2pa.C2paError as exc:
            raise ManifestError(f"signing a {mime} manifest failed: {exc}") from exc
        return out.getvalue()

    def _probe(self) -> None:
        """Sign a 1x1 PNG, so a key that does not match its certificate, or a
        certificate c2pa-rs refuses (no digitalSignature, wrong EKU, expired),
        fails at start-up rather than on the first delivered image."""
        pixel = io.BytesIO()
        Image.new("RGB", (1, 1)).save(pixel, "PNG")
        probe = Claims("probe", "probe", "probe", 0, "probe", "probe", "probe")
        self.sign(pixel.getvalue(), "image/png", probe)

    def _signer(self) -> Any:
        """A fresh native signer: one per call, never shared across threads."""
        info = c2pa.C2paSignerInfo(self._alg, self._chain, self._key, self._tsa_url)
        try:
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as exc:
            raise ManifestError(f"the signing key or chain is unusable: {exc}") from exc


def manifest_definition(claims: Claims, version: str, *, edited: bool) -> dict[str, Any]:
    """The manifest definition c2pa-rs builds the claim from."""
    generator = {"name": GENERATOR_NAME, "version": version}
    return {
        "claim_generator_info": [generator],
        "assertions": [
            {"label": ACTIONS_LABEL, "data": {"actions": _actions(claims, edited)}},
            {"label": GENERATION_LABEL, "data": {**_generation(claims), "generator": generator}},
            {"label": SOFT_BINDING_LABEL, "data": _soft_binding(claims)},
        ],
    }


def _actions(claims: Claims, edited: bool) -> list[dict[str, Any]]:
    """`c2pa.created` for a new image; `c2pa.opened` + `c2pa.edited` for an edit.

    C2PA 2.x wants the created/opened action first, and an opened action to
    name its parentOf ingredient; c2pa-rs resolves `ingredientIds` to it."""
    agent = {"name": claims.model_id}
    if not edited:
        return [
            {
                "action": "c2pa.created",
                "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                "softwareAgent": agent,
            }
        ]
    return [
        {"action": "c2pa.opened", "parameters": {"ingredientIds": [_INGREDIENT_ID]}},
        {
            "action": "c2pa.edited",
            "digitalSourceType": COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": agent,
        },
    ]


def _generation(claims: Claims) -> dict[str, Any]:
    return {
        "model_id": claims.model_id,
        "task": claims.task,
        "request_id": claims.request_id,
        "image_index": claims.image_index,
        "tenant_ref": claims.tenant_ref,
    }


def _soft_binding(claims: Claims) -> dict[str, Any]:
    """C2PA 2.x soft binding: the algorithm, and one block covering the whole
    asset (an empty scope) whose value is the watermark id."""
    return {
        "alg": claims.watermark_alg,
        "blocks": [{"scope": {}, "value": claims.watermark_id}],
    }


def _add_ingredient(builder: Any, ingredient: Ingredient) -> None:
    """Add the input image as the parentOf ingredient the opened action names.

    If the input carries its own manifest, c2pa-rs copies it in and records
    its validation results, so provenance chains across edits."""
    spec = {"title": "input", "relationship": "parentOf", "label": _INGREDIENT_ID}
    builder.add_ingredient(spec, ingredient.mime, io.BytesIO(ingredient.data))
