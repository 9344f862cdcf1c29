"""The InvokeModel body limit is checked on the exact encoded body, and the
encoding is skipped when a cheap upper bound already fits."""

from __future__ import annotations

import pytest

from gateway.domain import TextToImage
from gateway.errors import InvalidRequest
from gateway.routing import chain
from tests.backends.support import input_image, make_job
from titan.gateway.v1 import image_service_pb2 as pb

REQUEST = pb.GenerateImagesRequest(text_to_image={"text": "x"})


def _job(image_bytes: int, text: str = "a fox"):
    image = input_image()
    big = type(image)(bytes(image_bytes), image.format, image.width, image.height)
    return make_job(TextToImage(text, condition_image=big))


def test_a_body_just_over_the_limit_is_refused_though_its_images_alone_fit() -> None:
    job = _job(18_745_000, text="y" * 10_000)  # 24,993,336 bytes of base64 + the rest
    with pytest.raises(InvalidRequest) as caught:
        chain._check_body_size(REQUEST, job)
    (violation,) = caught.value.violations
    assert violation.field == "text_to_image"
    assert "25,000,000" in violation.description


def test_a_body_well_within_the_limit_is_not_encoded(monkeypatch) -> None:
    def fail(*_args: object) -> bytes:
        raise AssertionError("encoded although the bound fits")

    monkeypatch.setattr(chain, "encode_body", fail)
    chain._check_body_size(REQUEST, _job(17_000_000))
