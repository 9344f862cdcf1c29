"""The model registry: which Bedrock model ids the gateway may run, and each
model's dialect, tasks, limits, price and lifecycle — as data.

The shipped registry is `models.yaml` beside this file; the `registry_file`
setting replaces it and `default_models` / `default_model_id` change which
model runs a task when the request names none. Nothing here does I/O after
`load_registry` returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

from gateway.enums import TaskType
from gateway.registry.loader import SHIPPED, RegistryError, read_registry
from gateway.registry.spec import (
    DEFAULT_SIZE,
    MAX_BODY_BYTES,
    MAX_CFG_SCALE,
    MAX_IMAGES,
    MIN_CFG_SCALE,
    NOVA_MAX_PIXELS,
    NOVA_MAX_SIDE,
    NOVA_MIN_SIDE,
    TITAN_SIZES,
    InputRules,
    Lifecycle,
    LifecycleState,
    ModelLimits,
    ModelSpec,
    Price,
    PriceTier,
    SizeRule,
)

__all__ = [
    "DEFAULT_SIZE",
    "MAX_BODY_BYTES",
    "MAX_CFG_SCALE",
    "MAX_IMAGES",
    "MIN_CFG_SCALE",
    "NOVA_MAX_PIXELS",
    "NOVA_MAX_SIDE",
    "NOVA_MIN_SIDE",
    "SHIPPED",
    "TITAN_SIZES",
    "InputRules",
    "Lifecycle",
    "LifecycleState",
    "ModelLimits",
    "ModelRegistry",
    "ModelSpec",
    "Price",
    "PriceTier",
    "RegistryError",
    "SizeRule",
    "load_registry",
    "nova_size_problem",
]


class ModelRegistry:
    """The model ids this gateway may run, and the default model of each task."""

    def __init__(self, models: Iterable[ModelSpec], defaults: Mapping[TaskType, str]) -> None:
        self._models = {m.model_id: m for m in models}
        for task, model_id in defaults.items():
            model = self._models.get(model_id)
            if model is None:
                raise RegistryError(f"the default model for {task} ({model_id}) is not registered")
            if not model.can(task):
                raise RegistryError(f"the default model for {task} ({model_id}) cannot run it")
        self._defaults = dict(defaults)

    def get(self, model_id: str) -> ModelSpec | None:
        """The model for `model_id`, or None if it is not registered."""
        return self._models.get(model_id)

    def default_for(self, task: TaskType) -> ModelSpec | None:
        """The model a request for `task` runs on when it names none."""
        model_id = self._defaults.get(task)
        return None if model_id is None else self._models[model_id]

    def supporting(self, task: TaskType) -> list[str]:
        """Ids of the models that can run `task`, sorted."""
        return sorted(m.model_id for m in self._models.values() if m.can(task))

    def defaults_of(self, model_id: str) -> list[TaskType]:
        """The tasks `model_id` is the default for."""
        return [task for task, mid in self._defaults.items() if mid == model_id]

    @property
    def ids(self) -> list[str]:
        return sorted(self._models)

    @property
    def models(self) -> list[ModelSpec]:
        return [self._models[i] for i in self.ids]

    def retired(self, today: date) -> list[ModelSpec]:
        return [m for m in self.models if m.lifecycle.retired(today)]


def load_registry(
    path: Path | None = None,
    default_models: Mapping[TaskType, str] | None = None,
    default_model_id: str | None = None,
) -> ModelRegistry:
    """The registry in `path` (default: the shipped file).

    `default_models` overrides the file's per-task defaults; `default_model_id`
    then makes one model the default of every task it can run.
    """
    models, defaults = read_registry(path or SHIPPED)
    defaults.update(default_models or {})
    if default_model_id is not None:
        model = models.get(default_model_id)
        if model is None:
            raise RegistryError(f"default_model_id {default_model_id!r} is not registered")
        defaults.update({task: default_model_id for task in model.tasks})
    return ModelRegistry(models.values(), defaults)


def nova_size_problem(width: int, height: int) -> str | None:
    """Why (width, height) breaks Nova Canvas's resolution rules, or None."""
    for side in (width, height):
        if not NOVA_MIN_SIDE <= side <= NOVA_MAX_SIDE:
            return f"each side must be {NOVA_MIN_SIDE}-{NOVA_MAX_SIDE} pixels"
        if side % 16:
            return "each side must be divisible by 16"
    if max(width, height) > 4 * min(width, height):
        return "aspect ratio must be between 1:4 and 4:1"
    if width * height >= NOVA_MAX_PIXELS:
        return f"width x height must be below {NOVA_MAX_PIXELS} pixels"
    return None
