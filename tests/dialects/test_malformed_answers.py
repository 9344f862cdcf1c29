"""A backend answer that is not what the documented shape promises is
BackendUnavailable (retried, then reported), never an exception of the JSON
or base64 library, and never a silently wrong image."""

from __future__ import annotations

import base64

import pytest

from gateway.dialects.base import decode_b64, json_object
from gateway.errors import BackendUnavailable


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b'{"images": ["abc"', b"[1, 2]", b'"text"', b"\xff\xfe{}", b"{} trailing"],
    ids=["empty", "text", "truncated", "array", "string", "bad utf-8", "trailing"],
)
def test_a_body_that_is_not_one_json_object_is_unavailable(payload: bytes) -> None:
    with pytest.raises(BackendUnavailable):
        json_object(payload)


def test_a_json_object_parses() -> None:
    assert json_object(b'{"images": ["QUJD"], "error": null}') == {
        "images": ["QUJD"],
        "error": None,
    }


@pytest.mark.parametrize(
    "value",
    ["QUJD!", "QUJ", "QU JD", "QUJD\n", "ÄÖÜ=", 12, None, b"QUJD"],
    ids=["bad char", "bad padding", "space", "newline", "non-ascii", "int", "null", "bytes"],
)
def test_base64_is_strict(value: object) -> None:
    with pytest.raises(BackendUnavailable):
        decode_b64(value)


def test_base64_decodes_exactly() -> None:
    data = bytes(range(256)) * 40
    assert decode_b64(base64.b64encode(data).decode("ascii")) == data
