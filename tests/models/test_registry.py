"""The model registry as data: the shipped file, overrides, lifecycle, prices."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.enums import Dialect, Quality, TaskType
from gateway.registry import SHIPPED, RegistryError, load_registry
from gateway.registry.catalog import price_table
from gateway.settings import load_settings
from policies.pricing import DEFAULT_PRICES, PriceTable

REGISTRY = load_registry()
TITAN_V2 = "amazon.titan-image-generator-v2:0"


def test_the_shipped_registry_has_every_model_a_real_account_can_call() -> None:
    stability = [m for m in REGISTRY.models if m.dialect is Dialect.STABILITY]
    assert len(stability) == 16  # 3 text-to-image + 13 Image Services
    services = [m for m in stability if m.invoke_model_id != m.model_id]
    assert len(services) == 13
    assert all(m.invoke_model_id == f"us.{m.model_id}" for m in services)
    assert set(REGISTRY.supporting(TaskType.TEXT_IMAGE)) >= {
        "stability.sd3-5-large-v1:0",
        "stability.stable-image-core-v1:1",
        "stability.stable-image-ultra-v1:1",
    }


def test_the_policy_librarys_built_in_prices_equal_the_registrys() -> None:
    """policies/ cannot read the registry (it is pure); its fallback table
    must not drift from the file the gateway actually prices with."""
    assert price_table(REGISTRY).models == PriceTable.of(DEFAULT_PRICES).models


@pytest.mark.parametrize(
    ("model_id", "size", "quality", "micros"),
    [
        (TITAN_V2, (512, 512), Quality.STANDARD, 8_000),
        (TITAN_V2, (384, 704), Quality.PREMIUM, 10_000),
        (TITAN_V2, (1024, 1024), Quality.STANDARD, 10_000),  # AWS's 1024 tier, not 8,000
        (TITAN_V2, (1024, 1024), Quality.PREMIUM, 12_000),
        (TITAN_V2, (1408, 768), Quality.STANDARD, 10_000),
        ("amazon.nova-canvas-v1:0", (2048, 2048), Quality.PREMIUM, 80_000),
        ("stability.stable-image-ultra-v1:1", (1536, 640), Quality.STANDARD, 140_000),
        ("stability.stable-fast-upscale-v1:0", (4096, 4096), Quality.STANDARD, 30_000),
        ("stability.stable-creative-upscale-v1:0", (2048, 2048), Quality.STANDARD, 600_000),
    ],
)
def test_prices_follow_awss_table(model_id, size, quality, micros) -> None:
    model = REGISTRY.get(model_id)
    assert model is not None
    assert model.price.micros(*size, quality) == micros


@pytest.mark.parametrize(
    ("day", "state", "retired"),
    [
        (date(2025, 12, 29), "active", False),
        (date(2025, 12, 30), "legacy", False),
        (date(2026, 6, 29), "legacy", False),
        (date(2026, 6, 30), "eol", True),
    ],
)
def test_lifecycle_follows_the_dates(day: date, state: str, retired: bool) -> None:
    life = REGISTRY.get(TITAN_V2).lifecycle
    assert life.state(day).value == state
    assert life.retired(day) is retired


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_extended_access_keeps_a_retired_model_callable(tmp_path) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace(
        "      eol: 2026-06-30\n      replacement: stability.sd3-5-large-v1:0   # the gateway's",
        "      eol: 2026-06-30\n      extended_access: true\n"
        "      replacement: stability.sd3-5-large-v1:0   # the gateway's",
        1,
    )
    registry = load_registry(_write(tmp_path, text))
    assert not registry.get(TITAN_V2).lifecycle.retired(date(2026, 11, 30))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("    dialect: titan\n", "    dialect: dall-e\n"), "dialect"),
        (("    price: {usd: 0.08}\n", "    price: {usd: 0.08}\n    colour: red\n"), "colour"),
        (("  ERASE_OBJECT: stability.stable-image-erase-object-v1:0",
          "  ERASE_OBJECT: amazon.titan-image-generator-v2:0"), "cannot run it"),
        (("  TEXT_IMAGE: stability.sd3-5-large-v1:0", "  TEXT_IMAGE: no-such-model"),
         "is not registered"),
    ],
)  # fmt: skip
def test_a_bad_registry_file_says_what_is_wrong(tmp_path, edit, message) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace(*edit, 1)
    with pytest.raises(RegistryError, match=message):
        load_registry(_write(tmp_path, text))


def test_settings_choose_the_defaults(tmp_path) -> None:
    shipped = load_settings().registry()
    assert shipped.default_for(TaskType.TEXT_IMAGE).model_id == "stability.sd3-5-large-v1:0"
    one = load_settings(default_model_id=TITAN_V2).registry()
    assert one.default_for(TaskType.TEXT_IMAGE).model_id == TITAN_V2
    assert one.default_for(TaskType.ERASE_OBJECT).model_id.startswith("stability.")
    per_task = load_settings(default_models={"TEXT_IMAGE": "stability.stable-image-core-v1:1"})
    assert per_task.registry().default_for(TaskType.TEXT_IMAGE).model_id == (
        "stability.stable-image-core-v1:1"
    )
    with pytest.raises(ValueError, match="cannot run"):
        load_settings(default_models={"TEXT_IMAGE": "stability.stable-fast-upscale-v1:0"})
