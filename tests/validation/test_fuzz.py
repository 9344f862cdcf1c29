"""Fuzz: whatever arrives, decode_request returns an ImageJob or raises
InvalidRequest or TaskNotSupported, never anything else."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gateway.domain import ImageJob
from gateway.errors import InvalidRequest, TaskNotSupported
from gateway.registry import MAX_IMAGES
from gateway.validation import decode_request
from tests.validation.support import (
    ERASE,
    INPAINT,
    NOVA,
    SD35,
    SKETCH,
    TITAN_V1,
    TITAN_V2,
    ULTRA,
    jpeg,
    make_registry,
    mask_png,
    noisy_png,
    png,
    png_header,
    webp,
)
from titan.gateway.v1 import image_service_pb2

REGISTRY = make_registry()  # immutable: safe to share between examples
MAX_SEED = 2_147_483_646  # Titan and Nova Canvas
STABILITY_SEED_MAX = 4_294_967_294

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
    webp(320, 320),
    png(64, 200),  # too narrow for Stability's 1:2.5
    png(320, 320, (0, 0, 0, 0), "RGBA"),
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
floats01 = st.sampled_from([0.0, 0.1, 0.35, 0.5, 1.0]) | floats
sides = st.sampled_from([0, 1, 100, 2000, 2001]) | st.integers(0, 2**32 - 1)
names = st.sampled_from(["", "anime", "Anime", "PHOTOREALISM", "UPPER_BODY", "ON", "CONTOUR"])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


configs = st.fixed_dictionaries(
    {},
    optional={
        "number_of_images": st.integers(0, 7) | st.integers(0, 2**32 - 1),
        "width": st.sampled_from([0, 320, 512, 1000, 1024, 1173, 2048, 5000]),
        "height": st.sampled_from([0, 320, 512, 640, 1024, 2048]),
        "cfg_scale": floats,
        "seed": st.integers(-(2**63), 2**63 - 1)
        | st.integers(MAX_SEED - 5, MAX_SEED + 1)
        | st.integers(STABILITY_SEED_MAX - 5, STABILITY_SEED_MAX + 2),
        "quality": enums,
        "output_format": enums,
        "aspect_ratio": st.sampled_from(["", "1:1", "16:9", "7:3"]) | st.text(max_size=6),
    },
)


@st.composite
def masks(draw: st.DrawFn) -> dict[str, Any]:
    choice = draw(st.sampled_from(["none", "prompt", "image"]))
    if choice == "prompt":
        return {"mask_prompt": draw(texts)}
    return {"mask_image": draw(images)} if choice == "image" else {}


def _task(name: str, fields: dict[str, Any], **optional: Any) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(fields, optional=optional).map(lambda t: {name: t})


stability_tasks = st.one_of(
    _task("image_to_image", {"image": images, "text": texts}, strength=floats01),
    _task("fast_upscale", {"image": images}),
    _task("conservative_upscale", {"image": images, "text": texts}, creativity=floats01),
    _task(
        "creative_upscale", {"image": images, "text": texts, "style": names}, creativity=floats01
    ),
    _task(
        "search_and_replace",
        {"image": images, "search_prompt": texts, "text": texts},
        grow_mask=sides,
        style=names,
    ),
    _task(
        "search_and_recolor",
        {"image": images, "select_prompt": texts, "text": texts},
        grow_mask=sides,
    ),
    _task("erase_object", {"image": images}, mask_image=images, grow_mask=sides),
    _task(
        "expand_canvas",
        {"image": images, "left": sides, "down": sides},
        creativity=floats01,
        style=names,
    ),
    _task("style_guide", {"image": images, "text": texts}, fidelity=floats01, style=names),
    _task(
        "style_transfer",
        {"image": images, "style_image": images},
        change_strength=floats01,
        style_strength=floats01,
    ),
    _task(
        "virtual_try_on",
        {
            "source_image": images,
            "reference_image": images,
            "mask_type": enums,
            "garment_class": names,
        },
        mask_image=images,
        mask_prompt=texts,
        mask_shape=names,
        merge_style=enums,
        preserve_face=names,
        tucking_style=names,
        return_mask=st.booleans(),
    ),
)

tasks = st.one_of(
    st.fixed_dictionaries(
        {"text": texts, "negative_text": texts},
        optional={
            "style": names,
            "conditioning": st.fixed_dictionaries(
                {"condition_image": images, "control_mode": enums},
                optional={"control_strength": floats},
            ),
        },
    ).map(lambda t: {"text_to_image": t}),
    st.builds(lambda base, mask: {"inpainting": {**base, **mask}},
              st.fixed_dictionaries({"image": images, "text": texts},
                                    optional={"grow_mask": sides, "return_mask": st.booleans(),
                                              "style": names}), masks()),
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
    stability_tasks,
    st.just({}),
)  # fmt: skip

# Mostly known models and plausible ids, so that some requests get through.
model_ids = (
    st.sampled_from(["", TITAN_V2, TITAN_V1, NOVA, SD35, ULTRA, INPAINT, ERASE, SKETCH])
    | st.just("")
    | st.text(max_size=10)
)
request_ids = st.just("") | st.text("abc-_.:/ 123", max_size=20) | st.text(max_size=130)


@st.composite
def _requests(draw: st.DrawFn) -> image_service_pb2.GenerateImagesRequest:
    # A composite, not st.builds: its repr stays short. The repr of a builds()
    # over every task strategy is tens of kB, and Hypothesis warns about it
    # (an error here) when it reports a problem, which would hide the problem.
    return image_service_pb2.GenerateImagesRequest(
        config=draw(configs),
        model_id=draw(model_ids),
        client_request_id=draw(request_ids),
        **draw(tasks),
    )


requests = _requests()


Outcome = ImageJob | InvalidRequest | TaskNotSupported


def _outcome(request: image_service_pb2.GenerateImagesRequest) -> Outcome:
    try:
        return decode_request(request, REGISTRY)
    except (InvalidRequest, TaskNotSupported) as exc:  # anything else fails the test
        return exc


def _decode_or_reject(request: image_service_pb2.GenerateImagesRequest) -> None:
    result = _outcome(request)
    if isinstance(result, TaskNotSupported):
        event("task not supported")
        assert REGISTRY.get(request.model_id) is not None
        assert request.model_id not in result.metadata["supported_by"].split(",")
        return
    if isinstance(result, InvalidRequest):
        event("rejected")
        assert result.violations
        assert all(v.field and v.description for v in result.violations)
        return
    event(f"accepted {result.task_type}")
    _check_job(result)


def _check_job(job: ImageJob) -> None:
    config, limits = job.config, job.model.limits
    assert job.model.can(job.task_type)
    assert 1 <= config.count <= MAX_IMAGES
    assert config.seed >= 0
    assert job.seed_for(config.count - 1) <= limits.seed_max
    assert min(config.width, config.height) > 0
    assert config.quality in limits.qualities
    assert config.output_format in limits.output_formats
    assert (config.cfg_scale is None) == (limits.cfg_scale_default is None)
    assert config.aspect_ratio is None or limits.aspect_ratios[config.aspect_ratio] == (
        config.width,
        config.height,
    )


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
