"""Unit checks of the rules, throttle window and renderer without HTTP in between."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.emulator.errors import EmulatorError
from gateway.emulator.models import MODELS, TITAN_SIZES
from gateway.emulator.policy import Throttle
from gateway.emulator.render import render
from gateway.emulator.rules import validate_request

NOVA = MODELS["amazon.nova-canvas-v1:0"]
TITAN = MODELS["amazon.titan-image-generator-v2:0"]
ROOT = Path(__file__).resolve().parents[2]


def _sized(width: int, height: int) -> dict[str, Any]:
    return {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a tree"},
        "imageGenerationConfig": {"width": width, "height": height},
    }


def _accepted(model: Any, body: dict[str, Any]) -> bool:
    try:
        validate_request(model, body)
    except EmulatorError as exc:
        error = exc
    else:
        return True
    assert error.status == 400
    assert error.error_type == "ValidationException"
    assert error.message.startswith("Malformed input request: #/imageGenerationConfig: ")
    return False


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000))
def test_nova_sizes_follow_the_resolution_rules(width: int, height: int) -> None:
    expected = (
        all(320 <= side <= 4096 and side % 16 == 0 for side in (width, height))
        and max(width, height) <= 4 * min(width, height)
        and width * height < 4_194_304
    )
    assert _accepted(NOVA, _sized(width, height)) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(st.sampled_from(TITAN_SIZES), st.tuples(st.integers(1, 2000), st.integers(1, 2000)))
)
def test_titan_sizes_are_the_fixed_list(size: tuple[int, int]) -> None:
    assert _accepted(TITAN, _sized(*size)) == (size in TITAN_SIZES)


@pytest.mark.parametrize(("model", "limit"), [(TITAN, 512), (NOVA, 1024)])
def test_text_limit_boundary(model: Any, limit: int) -> None:
    params = {"text": "y" * limit}
    body = {"taskType": "TEXT_IMAGE", "textToImageParams": params}
    assert validate_request(model, body).text == "y" * limit
    params["text"] += "y"
    with pytest.raises(EmulatorError, match=f"expected maxLength: {limit}, actual: {limit + 1}"):
        validate_request(model, body)


def test_defaults_per_family() -> None:
    body = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a"}}
    titan = validate_request(TITAN, body).generation
    nova = validate_request(NOVA, body).generation
    assert titan is not None
    assert nova is not None
    assert (titan.seed, titan.cfg_scale, titan.width, titan.height) == (42, 8.0, 1024, 1024)
    assert (nova.seed, nova.cfg_scale, nova.width, nova.height) == (12, 6.5, 1024, 1024)


def test_throttle_window_slides() -> None:
    now = [1000.0]
    throttle = Throttle(clock=lambda: now[0])
    throttle.admit(3, 2)
    now[0] += 30
    throttle.admit(3, 1)
    with pytest.raises(EmulatorError) as info:
        throttle.admit(3, 1)
    assert (info.value.status, info.value.error_type) == (429, "ThrottlingException")
    now[0] += 30.5  # the first two images left the window
    throttle.admit(3, 2)
    throttle.admit(None, 100)  # no quota, no throttling


_DIGEST_SCRIPT = """
import hashlib
from gateway.emulator.models import MODELS
from gateway.emulator.render import render
from gateway.emulator.rules import validate_request
body = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a kite"},
        "imageGenerationConfig": {"width": 320, "height": 320, "seed": 5}}
req = validate_request(MODELS["amazon.nova-canvas-v1:0"], body)
print(hashlib.sha256(render(req, req.seeds).images[0]).hexdigest())
"""


def test_render_is_identical_across_processes() -> None:
    body = {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a kite"},
        "imageGenerationConfig": {"width": 320, "height": 320, "seed": 5},
    }
    req = validate_request(NOVA, body)
    here = hashlib.sha256(render(req, req.seeds).images[0]).hexdigest()
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run(
        [sys.executable, "-c", _DIGEST_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert here == there
