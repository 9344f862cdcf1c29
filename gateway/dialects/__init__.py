"""Model dialects: from the gateway's typed task to a model's InvokeModel JSON
body, and from the model's answer back to an image or a failure.

One module per body format (`gateway.enums.Dialect`):

    titan       Titan Image Generator v1/v2 and Nova Canvas (one envelope;
                Nova's extra fields only for the nova-canvas dialect)
    stability   Stable Image Ultra/Core, SD3.5 Large and the Image Services

The backend knows only the four names below; which module serves a job is
looked up from `job.model.dialect` in one table. Dialects do no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.dialects import stability, titan
from gateway.dialects.base import GeneratedImage
from gateway.domain import ImageJob
from gateway.enums import Dialect

__all__ = ["GeneratedImage", "build_body", "encode_body", "parse_response"]


def build_body(job: ImageJob, index: int) -> dict[str, object]:
    """The exact JSON body (before `json.dumps`) for image `index` of `job`:
    one image per call, seed `job.seed_for(index)`."""
    return _codec(job).build(job, index)


def encode_body(job: ImageJob, index: int) -> bytes:
    """`build_body` as the bytes InvokeModel sends."""
    return json.dumps(build_body(job, index)).encode()


def parse_response(job: ImageJob, payload: bytes) -> GeneratedImage:
    """The image in a 200 answer to `job`'s model.

    Raises `ImageFiltered` (the output filter withheld this image),
    `ContentBlocked` (the input filter refused the request) or
    `BackendUnavailable` (a malformed answer, no image, an inference error).
    """
    return _codec(job).parse(job, payload)


@dataclass(frozen=True)
class _Codec:
    build: Callable[[ImageJob, int], dict[str, object]]
    parse: Callable[[ImageJob, bytes], GeneratedImage]


_TITAN = _Codec(titan.build_body, titan.parse_response)
_CODECS: Mapping[Dialect, _Codec] = {
    Dialect.TITAN: _TITAN,
    Dialect.NOVA_CANVAS: _TITAN,
    Dialect.STABILITY: _Codec(stability.build_body, stability.parse_response),
}


def _codec(job: ImageJob) -> _Codec:
    return _CODECS[job.model.dialect]
