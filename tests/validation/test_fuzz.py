"""Fuzz: whatever arrives, decode_request returns an ImageJob or raises InvalidRequest."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gateway.domain import ImageJob
from gateway.errors import InvalidRequest
from gateway.models import MAX_IMAGES, MAX_SEED
from gateway.validation import decode_request
from tests.validation.support import (
    NOVA,
    TITAN_V1,
    TITAN_V2,
    jpeg,
    make_registry,
    mask_png,
    noisy_png,
    png,
    png_header,
)
from titan.gateway.v1 import image_service_pb2

REGISTRY = make_registry()  # immutable: safe to share between examples

SAMPLE_IMAGES = [
    png(64, 64),
    png(320, 320),
    png(512, 512),
    jpeg(320, 320),
    mask_png(320, 320),
    mask_png(64, 64, other=(9, 9, 9)),
    png(320, 320, (0, 0, 0, 0), "RGBA"),
    png(32, 32),
    noisy_png()[:-100],
    png_header(50_000, 50_000),
]


def _sample_image(index: int) -> bytes:
    return SAMPLE_IMAGES[index]


# Sampled by index: a strategy's repr holding the image bytes would be huge.
images = st.binary(max_size=64) | st.integers(0, len(SAMPLE_IMAGES) - 1).map(_sample_image)
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "a cat", "x" * 513, "é" * 1024, "y" * 1025]),
)
floats = st.floats(width=32)  # includes NaN and infinities
enums = st.integers(-2, 4)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


configs = st.fixed_dictionaries(
    {},
    optional={
        "number_of_images": st.integers(0, 7) | st.integers(0, 2**32 - 1),
        "width": st.sampled_from([0, 320, 512, 1000, 1024, 1173, 2048, 5000]),
        "height": st.sampled_from([0, 320, 512, 640, 1024, 2048]),
        "cfg_scale": floats,
        "seed": st.integers(-(2**63), 2**63 - 1) | st.integers(MAX_SEED - 5, MAX_SEED + 1),
        "quality": enums,
    },
)


@st.composite
def masks(draw: st.DrawFn) -> dict[str, Any]:
    choice = draw(st.sampled_from(["none", "prompt", "image"]))
    if choice == "prompt":
        return {"mask_prompt": draw(texts)}
    return {"mask_image": draw(images)} if choice == "image" else {}


tasks = st.one_of(
    st.fixed_dictionaries(
        {"text": texts, "negative_text": texts},
        optional={
            "conditioning": st.fixed_dictionaries(
                {"condition_image": images, "control_mode": enums},
                optional={"control_strength": floats},
            )
        },
    ).map(lambda t: {"text_to_image": t}),
    st.builds(lambda base, mask: {"inpainting": {**base, **mask}},
              st.fixed_dictionaries({"image": images, "text": texts}), masks()),
    st.builds(lambda base, mask: {"outpainting": {**base, **mask}},
              st.fixed_dictionaries({"image": images, "text": texts, "mode": enums}), masks()),
    st.fixed_dictionaries(
        {"images": st.lists(images, max_size=7), "text": texts},
        optional={"similarity_strength": floats},
    ).map(lambda t: {"image_variation": t}),
    st.fixed_dictionaries({"image": images}).map(lambda t: {"background_removal": t}),
    st.fixed_dictionaries(
        {
            "text": texts,
            "colors": st.lists(st.sampled_from(["#a1B2c3", "red", "#12345"]) | st.text(max_size=8),
                               max_size=12),
            "reference_image": images,
        }
    ).map(lambda t: {"color_guided_generation": t}),
    st.just({}),
)  # fmt: skip

requests = st.builds(
    lambda task, config, model, rid: image_service_pb2.GenerateImagesRequest(
        config=config, model_id=model, client_request_id=rid, **task
    ),
    tasks,
    configs,
    # Mostly known models and plausible ids, so that some requests get through.
    st.sampled_from(["", TITAN_V2, TITAN_V1, NOVA]) | st.just(NOVA) | st.text(max_size=10),
    st.just("") | st.text("abc-_.:/ 123", max_size=20) | st.text(max_size=130),
)


def _outcome(request: image_service_pb2.GenerateImagesRequest) -> ImageJob | InvalidRequest:
    try:
        return decode_request(request, REGISTRY)
    except InvalidRequest as exc:  # anything else escapes and fails the test
        return exc


def _decode_or_reject(request: image_service_pb2.GenerateImagesRequest) -> None:
    result = _outcome(request)
    if isinstance(result, InvalidRequest):
        event("rejected")
        assert result.violations
        assert all(v.field and v.description for v in result.violations)
        return
    event(f"accepted {result.task_type}")
    assert 1 <= result.config.count <= MAX_IMAGES
    assert result.config.seed >= 0
    assert result.seed_for(result.config.count - 1) <= MAX_SEED
    assert min(result.config.width, result.config.height) > 0


@settings(max_examples=300, deadline=None)
@given(requests)
def test_structured_requests_never_crash(request: image_service_pb2.GenerateImagesRequest) -> None:
    _decode_or_reject(request)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | requests.map(lambda r: r.SerializeToString()[:300]))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        request = image_service_pb2.GenerateImagesRequest.FromString(data)
    except DecodeError:
        return  # not a request at all: gRPC would refuse it before us
    _decode_or_reject(request)
