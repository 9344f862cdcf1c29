"""What every dialect shares: the result of one call, and the small JSON and
base64 helpers that read a 200 answer without trusting its shape.

A model's answer is data from the network: anything that is not the shape a
dialect expects (not JSON, not an object, bad base64) is a failed call,
`BackendUnavailable`, never an uncaught TypeError.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson
import pybase64

from gateway.domain import InputImage
from gateway.errors import BackendUnavailable

__all__ = [
    "NO_IMAGE",
    "GeneratedImage",
    "Params",
    "b64",
    "decode_b64",
    "first",
    "json_object",
    "malformed",
    "present",
]

Params = dict[str, object]
NO_IMAGE = "backend returned no image"


@dataclass(frozen=True)
class GeneratedImage:
    """What one InvokeModel call produced: the encoded image and, when the
    task asked for it (`return_mask`), the mask the model used."""

    data: bytes = field(repr=False)
    mask: bytes | None = field(default=None, repr=False)


def b64(image: InputImage | None) -> str | None:
    """An input image as the base64 text every dialect sends (None stays None)."""
    return None if image is None else pybase64.b64encode(image.data).decode("ascii")


def present(**fields: object) -> Params:
    """The fields that carry a value; None, "", [] and {} are left out (0 and False are kept).

    Bedrock rejects empty strings, and an absent optional field means "the
    model's default" in every dialect.
    """
    return {
        name: value
        for name, value in fields.items()
        if value is not None and value != "" and value != [] and value != {}
    }


def json_object(payload: bytes) -> dict[str, Any]:
    """The response body as a JSON object, or BackendUnavailable.

    orjson: a 1.4 MB image answer parses in ~0.4 ms against ~2.1 ms with the
    standard library (the base64 string dominates; README "Dependencies")."""
    try:
        result = orjson.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise malformed(exc) from exc
    if not isinstance(result, dict):
        raise malformed(f"expected a JSON object, got {type(result).__name__}")
    return result


def decode_b64(value: object) -> bytes:
    """Strict base64 text from a response as bytes, or BackendUnavailable.

    pybase64 (SIMD): ~0.06 ms for a 1.4 MB image against ~2.5 ms with the
    standard library, with the same strictness (`validate=True`)."""
    if not isinstance(value, str):
        raise malformed(f"expected base64 text, got {type(value).__name__}")
    try:
        return pybase64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise malformed(exc) from exc


def first(result: dict[str, Any], key: str) -> object:
    """The first element of list `result[key]`; None when absent or empty."""
    values = result.get(key)
    if values is None:
        return None
    if not isinstance(values, list):
        raise malformed(f"{key!r} is not a list")
    return values[0] if values else None


def malformed(reason: object) -> BackendUnavailable:
    return BackendUnavailable(f"Bedrock returned a malformed body: {reason}")
