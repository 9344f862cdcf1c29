"""Model-family differences, and several violations reported at once."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.registry import ModelRegistry
from gateway.validation import decode_request
from tests.validation.support import NOVA, TITAN_V1, TITAN_V2, mask_png, png, request, violations
from titan.gateway.v1 import image_service_pb2


def _t2i(text: str = "a cat", **config: Any) -> dict[str, Any]:
    return {"text_to_image": {"text": text}, "config": config}


def _inpaint(**config: Any) -> dict[str, Any]:
    return {"inpainting": {"image": png(512, 512), "mask_prompt": "cup"}, "config": config}


SAME_REQUEST_DIFFERENT_MODELS: list[tuple[str, dict[str, Any], dict[str, tuple[str, ...]]]] = [
    ("prompt-1024", _t2i("p" * 1024), {TITAN_V2: ("text_to_image.text",), NOVA: ()}),
    ("size-1024x2048", _t2i(width=1024, height=2048), {TITAN_V2: ("config.width",), NOVA: ()}),
    ("size-1173x640", _t2i(width=1173, height=640), {TITAN_V2: (), NOVA: ("config.width",)}),
    ("inpaint-with-size", _inpaint(width=512, height=512),
     {TITAN_V2: (), TITAN_V1: (), NOVA: ("config.width", "config.height")}),
    ("transparent-input",
     {"background_removal": {"image": png(512, 512, (0, 0, 0, 0), "RGBA")}},
     {TITAN_V2: (), NOVA: ("background_removal.image",)}),
    ("input-side-1504", {"background_removal": {"image": png(1504, 1024)}},
     {TITAN_V2: ("background_removal.image",), NOVA: ()}),
    ("background-removal", {"background_removal": {"image": png()}}, {TITAN_V2: (), NOVA: ()}),
    ("conditioning", {"text_to_image": {"text": "a", "conditioning": {"condition_image": png()}}},
     {TITAN_V2: (), NOVA: (), TITAN_V1: ("text_to_image.conditioning",)}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "model", "bad_fields"),
    [
        pytest.param(fields, model, bad, id=f"{name}-{model}")
        for name, fields, outcomes in SAME_REQUEST_DIFFERENT_MODELS
        for model, bad in outcomes.items()
    ],
)
def test_family_differences(
    registry: ModelRegistry, fields: dict[str, Any], model: str, bad_fields: tuple[str, ...]
) -> None:
    req = image_service_pb2.GenerateImagesRequest(model_id=model, **fields)
    if bad_fields:
        assert tuple(v.field for v in violations(req, registry)) == bad_fields
    else:
        assert decode_request(req, registry).model.model_id == model


def test_every_violation_is_reported(registry: ModelRegistry) -> None:
    config = {"number_of_images": 6, "cfg_scale": float("nan"), "width": 512, "quality": 5}
    task = {
        "image": png(512, 512, (0, 0, 0, 0), "RGBA"),
        "mask_image": mask_png(256, 256),
        "text": "t" * 1025,
        "negative_text": "n" * 2000,
    }
    req = request(NOVA, config, inpainting=task)
    req.client_request_id = "\x00" * 200
    found = violations(req, registry)
    assert [v.field for v in found] == [
        "client_request_id",
        "client_request_id",
        "inpainting.image",
        "inpainting.mask_image",
        "inpainting.mask_image",
        "inpainting.text",
        "inpainting.negative_text",
        "config.number_of_images",
        "config.width",
        "config.cfg_scale",
        "config.quality",
    ]


def test_invalid_request_carries_all_violations(registry: ModelRegistry) -> None:
    req = request(TITAN_V2, {"seed": -3}, color_guided_generation={"colors": ["blue"]})
    with pytest.raises(InvalidRequest) as caught:
        decode_request(req, registry)
    fields = [v.field for v in caught.value.violations]
    assert fields == [
        "color_guided_generation.text",
        "color_guided_generation.colors[0]",
        "config.seed",
    ]
    assert "color_guided_generation.colors[0]: must be a hex colour" in caught.value.message
    assert len(caught.value.details()) == 1  # one google.rpc.BadRequest


def test_unknown_model_skips_model_dependent_checks(registry: ModelRegistry) -> None:
    req = request("amazon.titan-image-generator-v9", text_to_image={"text": "x" * 5000})
    found = violations(req, registry)
    assert [v.field for v in found] == ["model_id"]
    assert "amazon.titan-image-generator-v9" in found[0].description


def test_missing_task_and_bad_model_are_both_reported(registry: ModelRegistry) -> None:
    req = image_service_pb2.GenerateImagesRequest(model_id="x", client_request_id="a" * 129)
    assert [v.field for v in violations(req, registry)] == ["client_request_id", "model_id", "task"]


def test_long_description_values_are_shortened(registry: ModelRegistry) -> None:
    req = request("m" * 10_000, text_to_image={"text": "a"})
    (violation,) = violations(req, registry)
    assert "(10000 characters)" in violation.description
    assert len(violation.description) < 300
