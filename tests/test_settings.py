"""Settings: one validated object from a YAML file and TITAN_GW_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.enums import Dialect, TaskType
from gateway.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_run_the_emulator_on_loopback() -> None:
    settings = load_settings()
    assert settings.listen == "127.0.0.1:50051"
    assert settings.backend == "emulator"
    registry = settings.registry()
    assert registry.default_for(TaskType.TEXT_IMAGE).model_id == "stability.sd3-5-large-v1:0"
    assert registry.get("amazon.nova-canvas-v1:0").dialect is Dialect.NOVA_CANVAS


def test_the_file_sets_values_and_the_environment_beats_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "backend_concurrency: 3\nemulator:\n  latency_ms: 20\n")
    monkeypatch.setenv("TITAN_GW_BACKEND_CONCURRENCY", "7")
    settings = load_settings(path)
    assert settings.backend_concurrency == 7
    assert settings.emulator.latency_ms == 20


def test_nested_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TITAN_GW_EMULATOR__IMAGES_PER_MINUTE", "30")
    assert load_settings().emulator.images_per_minute == 30


MY_REGISTRY = """
version: 1
defaults: {TEXT_IMAGE: my-core}
models:
  my-core:
    dialect: stability
    invoke_id: us.stability.stable-image-core-v1:1
    tasks: [TEXT_IMAGE]
    limits:
      max_text: 10000
      sizes: aspect_ratio
      aspect_ratios: {"1:1": [1024, 1024]}
      seed_max: 4294967295
      qualities: [standard]
      output_formats: [png]
    price: {usd: 0.04}
"""


def test_models_are_configuration(tmp_path: Path) -> None:
    registry_file = tmp_path / "models.yaml"
    registry_file.write_text(MY_REGISTRY, encoding="utf-8")
    path = write(tmp_path, f"registry_file: {registry_file}\n")
    registry = load_settings(path).registry()
    assert registry.ids == ["my-core"]
    assert registry.default_for(TaskType.TEXT_IMAGE) is registry.get("my-core")
    assert registry.get("my-core").invoke_model_id == "us.stability.stable-image-core-v1:1"
    assert registry.get("amazon.titan-image-generator-v2:0") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listen_adress: 1.2.3.4:1\n", "listen_adress"),
        ("backend: openai\n", "backend"),
        ("backend_concurrency: 0\n", "backend_concurrency"),
        ("default_model_id: nope\n", "is not registered"),
        ("emulator:\n  latency: 5\n", "latency"),
        ("default_models: {TEXT_IMAGE: stability.stable-fast-upscale-v1:0}\n", "cannot run"),
    ],
    ids=[
        "unknown key",
        "bad backend",
        "zero concurrency",
        "unlisted default",
        "nested typo",
        "default that cannot run its task",
    ],
)
def test_bad_settings_are_refused_at_load(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_settings(write(tmp_path, text))
