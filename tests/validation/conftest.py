from __future__ import annotations

import pytest

from gateway.models import ModelRegistry
from tests.validation.support import make_registry


@pytest.fixture
def registry() -> ModelRegistry:
    """Titan v2 (the default), Titan v1 and Nova Canvas."""
    return make_registry()
