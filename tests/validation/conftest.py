from __future__ import annotations

import pytest

from gateway.registry import ModelRegistry
from tests.validation.support import make_registry


@pytest.fixture
def registry() -> ModelRegistry:
    """The shipped models; Titan v2 is the default of every task it can run."""
    return make_registry()
