"""Reading a C2PA manifest back: is there one, does it validate, whom does
its signer chain to, and what does it say about the image.

c2pa-rs reports three validation states; the gateway adds a fourth for
images with no manifest at all:

    c2pa-rs "Trusted"  -> valid      every binding holds; chain ends in an anchor
    c2pa-rs "Valid"    -> untrusted  every binding holds; the signer is unknown
    c2pa-rs "Invalid"  -> invalid    something changed since signing
    no manifest        -> absent     stripped, never signed, or not an image

Bytes c2pa-rs cannot parse at all read as "absent" with the library's reason
in the explanation: a detection endpoint must answer, not crash. Each call
builds its own `Context`, so the trust anchors are per call and per thread,
and the shared no-network settings keep OCSP and remote manifests unfetched.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Literal

import c2pa  # type: ignore[import-untyped]  # c2pa-python ships no py.typed

from gateway.provenance.vocabulary import (
    ACTIONS_LABEL,
    GENERATION_LABEL,
    SOFT_BINDING_LABEL,
    ManifestError,
    no_network_settings,
)

State = Literal["absent", "valid", "invalid", "untrusted"]
_STATES: dict[str, State] = {"Trusted": "valid", "Valid": "untrusted", "Invalid": "invalid"}
DATA_HASH_MISMATCH = "assertion.dataHash.mismatch"
UNTRUSTED = "signingCredential.untrusted"
_NO_MANIFEST = "The image carries no C2PA manifest: it was stripped or never signed."
# What a failure code means, for people; the first match in a report explains it.
_MEANINGS = {
    DATA_HASH_MISMATCH: "the pixels changed after the manifest was signed",
    "claimSignature.mismatch": "the signature does not match the manifest's claim",
    "assertion.hashedURI.mismatch": "an assertion was altered after signing",
    "signingCredential.expired": "the signing certificate had expired",
    "signingCredential.invalid": "the signing certificate is not fit for C2PA signing",
}


@dataclass(frozen=True)
class ReadClaims:
    """What a manifest states; None where a foreign manifest does not say."""

    digital_source_type: str | None
    model_id: str | None
    task: str | None
    request_id: str | None
    image_index: int | None
    tenant_ref: str | None
    generator: str | None  # "name version" of the claim generator
    watermark_id: str | None
    watermark_alg: str | None
    has_ingredient: bool
    signer: str | None  # the signing certificate's subject common name
    manifest_json: str  # the whole manifest store, as c2pa-rs reports it


@dataclass(frozen=True)
class ManifestReport:
    """The verdict on one image's manifest."""

    state: State
    failures: tuple[str, ...]  # C2PA validation status codes
    explanation: str  # one sentence for people
    claims: ReadClaims | None


def read_manifest(data: bytes, mime: str, trust_anchors_pem: bytes | None) -> ManifestReport:
    """Validate the manifest embedded in `data` against `trust_anchors_pem`.

    Without anchors nothing can be trusted: an intact manifest reads as
    "untrusted". Raises ManifestError only if the anchors themselves are bad."""
    with _context(trust_anchors_pem) as context:
        try:
            store_json = _store_json(data, mime, context)
        except c2pa.C2paError as exc:
            return _unreadable(exc, mime)
    if store_json is None:
        return ManifestReport("absent", (), _NO_MANIFEST, None)
    claims = claims_from_json(store_json)
    state, failures = _verdict(json.loads(store_json))
    return ManifestReport(state, failures, _explain(state, failures, claims), claims)


def claims_from_json(manifest_json: str) -> ReadClaims:
    """Parse the claims out of a stored reader JSON (the active manifest)."""
    store = json.loads(manifest_json)
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    assertions = {a.get("label"): a.get("data", {}) for a in active.get("assertions", [])}
    generation = assertions.get(GENERATION_LABEL, {})
    binding = assertions.get(SOFT_BINDING_LABEL, {})
    blocks = binding.get("blocks") or [{}]
    return ReadClaims(
        digital_source_type=_source_type(assertions.get(ACTIONS_LABEL, {})),
        model_id=generation.get("model_id"),
        task=generation.get("task"),
        request_id=generation.get("request_id"),
        image_index=generation.get("image_index"),
        tenant_ref=generation.get("tenant_ref"),
        generator=_generator(active.get("claim_generator_info") or []),
        watermark_id=blocks[0].get("value"),
        watermark_alg=binding.get("alg"),
        has_ingredient=bool(active.get("ingredients")),
        signer=active.get("signature_info", {}).get("common_name"),
        manifest_json=manifest_json,
    )


def _context(trust_anchors_pem: bytes | None) -> Any:
    """A Context of its own for this read: the anchors reach no other caller."""
    settings = no_network_settings()
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem.decode("ascii")}
    try:
        return c2pa.Context.from_dict(settings)
    except (c2pa.C2paError, UnicodeDecodeError) as exc:
        raise ManifestError(f"the trust anchors are not readable PEM certificates: {exc}") from exc


def _store_json(data: bytes, mime: str, context: Any) -> str | None:
    reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=context)
    if reader is None:
        return None
    with reader:
        return str(reader.json())


def _unreadable(exc: Exception, mime: str) -> ManifestReport:
    """Map a reader error: no manifest to find, a remote one, or a damaged one."""
    message = str(exc)
    if message.startswith("Remote"):
        why = "The image only points to a remote manifest, which is never fetched."
        return ManifestReport("absent", ("manifest.inaccessible",), why, None)
    if _is_not_an_asset(exc):
        why = f"The bytes could not be read as {mime}, so no manifest was found ({message})."
        return ManifestReport("absent", (), why, None)
    why = f"A manifest is present but too damaged to validate ({message})."
    return ManifestReport("invalid", ("claim.malformed",), why, None)


def _is_not_an_asset(exc: Exception) -> bool:
    """c2pa-rs could not parse the container, so it never reached a manifest."""
    if isinstance(exc, c2pa.C2paError.Io | c2pa.C2paError.NotSupported):
        return True
    return isinstance(exc, c2pa.C2paError.Other) and "asset could not be parsed" in str(exc)


def _verdict(store: dict[str, Any]) -> tuple[State, tuple[str, ...]]:
    results = store.get("validation_results", {}).get("activeManifest", {})
    listed = results.get("failure") or store.get("validation_status") or []
    failures = tuple(dict.fromkeys(item["code"] for item in listed))
    return _STATES.get(store.get("validation_state", ""), "invalid"), failures


def _explain(state: State, failures: tuple[str, ...], claims: ReadClaims) -> str:
    signer = claims.signer or "an unnamed signer"
    if state == "valid":
        return f"Signed by {signer}, which chains to a trusted root; nothing changed since."
    if state == "untrusted":
        return f"Intact since signing, but the signer {signer} is not among the trusted roots."
    reasons = [_MEANINGS[code] for code in failures if code in _MEANINGS]
    if reasons:
        return f"The manifest does not validate: {reasons[0]} ({', '.join(failures)})."
    return f"The manifest does not validate ({', '.join(failures) or 'no reason given'})."


def _source_type(actions: dict[str, Any]) -> str | None:
    """The digital source type of the first action that states one."""
    for action in actions.get("actions", []):
        if action.get("digitalSourceType"):
            return str(action["digitalSourceType"])
    return None


def _generator(infos: list[dict[str, Any]]) -> str | None:
    if not infos:
        return None
    first = infos[0]
    return " ".join(str(part) for part in (first.get("name"), first.get("version")) if part)
