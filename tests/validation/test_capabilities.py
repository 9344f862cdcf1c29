"""Which model runs a request: the registry's default per task, and
TaskNotSupported when the named model cannot run the task."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from gateway.enums import TaskType
from gateway.errors import TaskNotSupported
from gateway.registry import MAX_IMAGES, ModelRegistry, load_registry
from gateway.validation import decode_request
from tests.validation.support import (
    CONSERVATIVE,
    CORE,
    CREATIVE,
    ERASE,
    FAST_UPSCALE,
    INPAINT,
    NOVA,
    OUTPAINT,
    REMOVE_BG,
    SD35,
    SEARCH_RECOLOR,
    SEARCH_REPLACE,
    SKETCH,
    STRUCTURE,
    STYLE_GUIDE,
    STYLE_TRANSFER,
    TITAN_V1,
    TITAN_V2,
    ULTRA,
    Build,
    mask_png,
    png,
    request,
    violations,
)
from titan.gateway.v1 import tasks_pb2

SHIPPED = load_registry()  # the shipped per-task defaults (Stability where one exists)


def task(**fields: Any) -> Build:
    """A valid request for the task named by the keyword, on `model` if given."""
    model = fields.pop("model", "")
    config = fields.pop("config", None)
    return lambda: request(model, config, **fields)


def _cond(mode: int) -> dict[str, Any]:
    return {"text": "a cat", "conditioning": {"condition_image": png(), "control_mode": mode}}


T2I: dict[str, Any] = {"text_to_image": {"text": "a cat"}}
I2I = {"image_to_image": {"image": png(), "text": "a cat"}}
SKETCHED = {"text_to_image": _cond(tasks_pb2.CONTROL_MODE_SKETCH)}
STRUCTURED = {"text_to_image": _cond(tasks_pb2.CONTROL_MODE_STRUCTURE)}
INPAINTING = {"inpainting": {"image": png(), "mask_image": mask_png(), "text": "a vase"}}
OUTPAINTING = {"outpainting": {"image": png(), "mask_prompt": "the dog", "text": "a beach"}}
VARIATION = {"image_variation": {"images": [png()]}}
COLOUR = {"color_guided_generation": {"text": "a poster", "colors": ["#000000"]}}
BG = {"background_removal": {"image": png()}}
ERASING = {"erase_object": {"image": png()}}
TRY_ON = {
    "virtual_try_on": {
        "source_image": png(),
        "reference_image": png(),
        "garment_class": "UPPER_BODY",
    }
}
EVERY_TASK: list[tuple[dict[str, Any], TaskType, str]] = [
    (T2I, TaskType.TEXT_IMAGE, SD35),
    (I2I, TaskType.IMAGE_TO_IMAGE, SD35),
    (SKETCHED, TaskType.CONTROL_SKETCH, SKETCH),
    (STRUCTURED, TaskType.CONTROL_STRUCTURE, STRUCTURE),
    (INPAINTING, TaskType.INPAINTING, INPAINT),
    (OUTPAINTING, TaskType.OUTPAINTING, TITAN_V2),
    (VARIATION, TaskType.IMAGE_VARIATION, TITAN_V2),
    (COLOUR, TaskType.COLOR_GUIDED_GENERATION, TITAN_V2),
    (BG, TaskType.BACKGROUND_REMOVAL, REMOVE_BG),
    (ERASING, TaskType.ERASE_OBJECT, ERASE),
    ({"search_and_replace": {"image": png(), "search_prompt": "a", "text": "b"}},
     TaskType.SEARCH_AND_REPLACE, SEARCH_REPLACE),
    ({"search_and_recolor": {"image": png(), "select_prompt": "a", "text": "b"}},
     TaskType.SEARCH_AND_RECOLOR, SEARCH_RECOLOR),
    ({"expand_canvas": {"image": png(), "left": 64}}, TaskType.EXPAND_CANVAS, OUTPAINT),
    ({"fast_upscale": {"image": png(256, 256)}}, TaskType.FAST_UPSCALE, FAST_UPSCALE),
    ({"conservative_upscale": {"image": png(), "text": "a"}}, TaskType.CONSERVATIVE_UPSCALE,
     CONSERVATIVE),
    ({"creative_upscale": {"image": png(), "text": "a"}}, TaskType.CREATIVE_UPSCALE, CREATIVE),
    ({"style_guide": {"image": png(), "text": "a"}}, TaskType.STYLE_GUIDE, STYLE_GUIDE),
    ({"style_transfer": {"image": png(), "style_image": png()}}, TaskType.STYLE_TRANSFER,
     STYLE_TRANSFER),
    (TRY_ON, TaskType.VIRTUAL_TRY_ON, NOVA),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "task_type", "default"),
    [pytest.param(f, t, d, id=t.value) for f, t, d in EVERY_TASK],
)
def test_shipped_default_model_per_task(
    fields: dict[str, Any], task_type: TaskType, default: str
) -> None:
    job = decode_request(request(**fields), SHIPPED)
    assert (job.model.model_id, job.task_type) == (default, task_type)


def test_every_task_type_is_covered() -> None:
    assert {t for _, t, _ in EVERY_TASK} == set(TaskType)


def test_text_to_image_defaults_come_from_the_shipped_registry() -> None:
    job = decode_request(request(**T2I), SHIPPED)
    config = job.config
    assert job.model.model_id == SD35
    assert (config.width, config.height, config.aspect_ratio) == (1024, 1024, "1:1")
    assert (config.cfg_scale, config.send_size, config.count) == (None, False, 1)
    assert (config.quality.value, config.output_format.value) == ("standard", "png")
    assert 1 <= config.seed <= job.model.limits.seed_max - MAX_IMAGES


@pytest.mark.parametrize(
    ("fields", "default"),
    [
        pytest.param(T2I, TITAN_V2, id="text-to-image"),
        pytest.param(INPAINTING, TITAN_V2, id="inpainting"),
        pytest.param(BG, TITAN_V2, id="background-removal"),
        pytest.param(I2I, SD35, id="image-to-image-keeps-shipped"),
        pytest.param(ERASING, ERASE, id="erase-keeps-shipped"),
        pytest.param(TRY_ON, NOVA, id="try-on-keeps-shipped"),
    ],
)
def test_default_model_id_overrides_what_it_can_run(
    registry: ModelRegistry, fields: dict[str, Any], default: str
) -> None:
    assert decode_request(request(**fields), registry).model.model_id == default


CAPABILITY = [
    ("erase-on-titan", task(model=TITAN_V2, **ERASING), TaskType.ERASE_OBJECT, [ERASE]),
    ("background-removal-on-titan-v1", task(model=TITAN_V1, **BG), TaskType.BACKGROUND_REMOVAL,
     [NOVA, TITAN_V2, REMOVE_BG]),
    ("colour-on-titan-v1", task(model=TITAN_V1, **COLOUR), TaskType.COLOR_GUIDED_GENERATION,
     [NOVA, TITAN_V2]),
    ("sketch-on-titan", task(model=TITAN_V2, **SKETCHED), TaskType.CONTROL_SKETCH, [SKETCH]),
    ("structure-on-sd35", task(model=SD35, **STRUCTURED), TaskType.CONTROL_STRUCTURE,
     [STRUCTURE]),
    ("try-on-on-sd35", task(model=SD35, **TRY_ON), TaskType.VIRTUAL_TRY_ON, [NOVA]),
    ("image-to-image-on-core", task(model=CORE, **I2I), TaskType.IMAGE_TO_IMAGE, [SD35, ULTRA]),
    ("text-to-image-on-erase", task(model=ERASE, **T2I), TaskType.TEXT_IMAGE,
     [NOVA, TITAN_V1, TITAN_V2, SD35, CORE, ULTRA]),
    ("outpainting-on-stability-inpaint", task(model=INPAINT, **OUTPAINTING), TaskType.OUTPAINTING,
     [NOVA, TITAN_V1, TITAN_V2]),
    ("variation-on-ultra", task(model=ULTRA, **VARIATION), TaskType.IMAGE_VARIATION,
     [NOVA, TITAN_V1, TITAN_V2]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "task_type", "supported_by"),
    [pytest.param(*case[1:], id=case[0]) for case in CAPABILITY],
)
def test_task_not_supported(
    registry: ModelRegistry, build: Build, task_type: TaskType, supported_by: list[str]
) -> None:
    req = build()
    with pytest.raises(TaskNotSupported) as caught:
        decode_request(req, registry)
    error = caught.value
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION
    assert error.metadata == {
        "model": req.model_id,
        "task": task_type.value,
        "supported_by": ",".join(sorted(supported_by)),
    }
    assert f"model {req.model_id} cannot run {task_type.value}" in error.message
    assert all(model in error.message for model in supported_by)


def test_task_not_supported_comes_before_every_other_check(registry: ModelRegistry) -> None:
    config = {"number_of_images": 9, "seed": -1, "quality": tasks_pb2.QUALITY_PREMIUM}
    req = request(TITAN_V2, config, erase_object={"image": b"not an image", "grow_mask": 99})
    req.client_request_id = "\n" * 300
    with pytest.raises(TaskNotSupported):
        decode_request(req, registry)


def test_unknown_model_lists_the_models_that_can_run_the_task(registry: ModelRegistry) -> None:
    (found,) = violations(request("stability.erase", erase_object={"image": png()}), registry)
    assert found.field == "model_id"
    assert found.description == f"must be one of {ERASE} (got 'stability.erase')"


def test_no_default_model_for_the_task(registry: ModelRegistry) -> None:
    bare = ModelRegistry(registry.models, {})
    (found,) = violations(request(erase_object={"image": png()}), bare)
    assert found.field == "model_id"
    assert "is required for ERASE_OBJECT" in found.description
    assert ERASE in found.description
    # Naming the model still works.
    assert decode_request(request(ERASE, erase_object={"image": png()}), bare).model.model_id == (
        ERASE
    )
