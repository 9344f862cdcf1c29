"""Helpers for the dialect tests: jobs on registered models, small real
images, and golden request bodies.

Golden bodies live in `golden/<dialect>/<case>.json` with every base64 image
elided to a marker such as "<b64:PNG 64x64 RGB #3f2a...>" (format, size, mode
and a hash of the decoded pixels, so the marker does not depend on how the
image was compressed). `UPDATE_GOLDEN=1 pytest tests/dialects` rewrites them;
review the diff before keeping it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from gateway.domain import ImageConfig, ImageJob, InputImage, Task
from gateway.enums import Dialect, Quality, TaskType
from gateway.registry import ModelRegistry, ModelSpec, load_registry
from tests.imagekit import box_mask, encode, photo

GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

TITAN_V1 = "amazon.titan-image-generator-v1"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"

# The black box of MASK (the API's convention: black is the region).
MASK_BOX = (16, 16, 47, 47)


def input_image(img: Image.Image, fmt: str = "PNG") -> InputImage:
    return InputImage(encode(img, fmt), fmt, img.width, img.height)


IMAGE = input_image(photo(64, 64))
OTHER = input_image(photo(96, 64))
MASK = input_image(box_mask((64, 64), MASK_BOX))

TITAN_CONFIG = ImageConfig(
    count=1, width=512, height=512, cfg_scale=8.0, seed=42, quality=Quality.STANDARD
)
NOVA_CONFIG = ImageConfig(
    count=1, width=1024, height=1024, cfg_scale=6.5, seed=12, quality=Quality.STANDARD
)
# Stability takes no size and no cfg scale; the seed is the gateway's.
STABILITY_CONFIG = ImageConfig(
    count=1,
    width=1024,
    height=1024,
    cfg_scale=None,
    seed=1000,
    quality=Quality.STANDARD,
    send_size=False,
)


@cache
def registry() -> ModelRegistry:
    return load_registry()


def registered(model_id: str) -> ModelSpec:
    model = registry().get(model_id)
    assert model is not None, f"{model_id} is not in the shipped registry"
    return model


def make_job(task: Task, model_id: str, base: ImageConfig, **config: Any) -> ImageJob:
    return ImageJob(task, replace(base, **config), registered(model_id))


def jobs_of(cases: Iterable[Any]) -> list[ImageJob]:
    """The jobs of `pytest.param(job, index, id=...)` cases."""
    return [job for case in cases if isinstance(job := case.values[0], ImageJob)]


def uncovered(cases: Iterable[Any], dialect: Dialect) -> set[tuple[str, TaskType]]:
    """(model id, task) pairs of `dialect`'s registered models that no case runs."""
    covered = {(job.model.model_id, job.task_type) for job in jobs_of(cases)}
    expected = {
        (model.model_id, task)
        for model in registry().models
        if model.dialect is dialect
        for task in model.tasks
    }
    return expected - covered


def b64_image(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_image(text: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
    img.load()
    return img


def elide(value: object) -> object:
    """`value` with every base64-encoded image replaced by a short marker."""
    if isinstance(value, dict):
        return {key: elide(item) for key, item in value.items()}
    if isinstance(value, list):
        return [elide(item) for item in value]
    if isinstance(value, str):
        return _image_marker(value) or value
    return value


def _image_marker(text: str) -> str | None:
    if len(text) < 32:  # short words can be valid base64 too
        return None
    try:
        img = decode_image(text)
    except (binascii.Error, ValueError, OSError):
        return None
    pixels = hashlib.sha256(img.tobytes()).hexdigest()[:12]
    return f"<b64:{img.format} {img.width}x{img.height} {img.mode} #{pixels}>"


def check_golden(name: str, body: dict[str, object]) -> None:
    """`body` (elided) equals golden/<name>.json; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / f"{name}.json"
    actual = elide(json.loads(json.dumps(body)))  # what goes on the wire
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return
    assert path.exists(), f"no golden body {path}; run with UPDATE_GOLDEN=1 and review it"
    assert actual == json.loads(path.read_text(encoding="utf-8")), f"body differs from {path}"


def assert_plain_json(value: object) -> None:
    """Enum members go out as plain strings, so the body survives json round-trips."""
    assert type(value) in {str, int, float, bool, list, dict}, (value, type(value))
    if isinstance(value, dict):
        for item in value.values():
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
