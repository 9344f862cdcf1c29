"""The registry as people and operators read it: `AdminService.ListModels`
rows and the lifecycle verdicts the request path acts on."""

from __future__ import annotations

import logging
from datetime import date

from gateway.convert import TASK_TYPE_TO_PROTO
from gateway.enums import Quality
from gateway.registry import DEFAULT_SIZE, LifecycleState, ModelRegistry, ModelSpec
from policies import PriceTable
from policies.pricing import ModelPrice, SizeClass
from titan.gateway.v1 import admin_service_pb2 as pb

log = logging.getLogger(__name__)


def model_infos(registry: ModelRegistry, today: date) -> list[pb.ModelInfo]:
    """One row per registered model, ordered by id."""
    return [_info(registry, model, today) for model in registry.models]


def _info(registry: ModelRegistry, model: ModelSpec, today: date) -> pb.ModelInfo:
    life = model.lifecycle
    price = model.price.micros(*DEFAULT_SIZE, Quality.STANDARD) or 0
    return pb.ModelInfo(
        model_id=model.model_id,
        invoke_model_id=model.invoke_model_id,
        dialect=model.dialect.value,
        tasks=sorted(TASK_TYPE_TO_PROTO[t] for t in model.tasks),
        lifecycle=life.state(today).value,
        legacy_date=life.legacy.isoformat() if life.legacy else "",
        eol_date=life.eol.isoformat() if life.eol else "",
        replacement=life.replacement or "",
        extended_access=life.extended_access,
        price_micros=price,
        price_source=model.price.source,
        default_for=sorted(TASK_TYPE_TO_PROTO[t] for t in registry.defaults_of(model.model_id)),
    )


class LegacyWarnings:
    """Logs one warning per legacy model per day of use (no more: it would
    drown the log of a busy gateway)."""

    def __init__(self) -> None:
        self._warned: set[tuple[str, date]] = set()

    def used(self, model: ModelSpec, today: date) -> None:
        key = (model.model_id, today)
        if key in self._warned or model.lifecycle.state(today) is not LifecycleState.LEGACY:
            return
        self._warned.add(key)
        life = model.lifecycle
        log.warning(
            "model %s is Legacy on Bedrock (end of life %s); move to %s",
            model.model_id,
            life.eol.isoformat() if life.eol else "not announced",
            life.replacement or "its successor",
        )


def price_table(registry: ModelRegistry) -> PriceTable:
    """The registry's prices as the policy engine's base price table (a policy
    file's `pricing:` section overrides it per model)."""
    return PriceTable.of(
        ModelPrice(
            model.model_id,
            tuple(
                SizeClass(t.max_pixels, t.standard_micros, t.premium_micros)
                for t in model.price.tiers
            ),
        )
        for model in registry.models
    )
