"""Lifecycle on the request path: legacy warnings, retired models in a chain."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from gateway.registry import load_registry
from gateway.registry.catalog import LegacyWarnings

REGISTRY = load_registry()
NOVA = REGISTRY.get("amazon.nova-canvas-v1:0")


def test_a_legacy_model_warns_once_per_day_of_use(caplog: pytest.LogCaptureFixture) -> None:
    warnings = LegacyWarnings()
    legacy_day, next_day = date(2026, 4, 1), date(2026, 4, 2)
    with caplog.at_level(logging.WARNING, logger="gateway.registry.catalog"):
        for _ in range(3):
            warnings.used(NOVA, legacy_day)
        warnings.used(NOVA, next_day)
        warnings.used(NOVA, date(2026, 3, 1))  # still active then: no warning
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "amazon.nova-canvas-v1:0 is Legacy" in messages[0]
    assert "2026-09-30" in messages[0]
    assert "stability.sd3-5-large-v1:0" in messages[0]
