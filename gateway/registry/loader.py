"""models.yaml → `ModelSpec`s: a strict schema (unknown keys are errors), then
conversion into the frozen types of `gateway.registry.spec`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gateway.enums import ControlMode, Dialect, OutputFormat, Quality, TaskType
from gateway.registry.spec import (
    InputRules,
    Lifecycle,
    ModelLimits,
    ModelSpec,
    Price,
    PriceTier,
    SizeRule,
)
from policies.money import usd_to_micros

SHIPPED = Path(__file__).with_name("models.yaml")
# A flat price holds for any output (Bedrock's largest, a 4x upscale, is far below).
FLAT_MAX_PIXELS = 64 * 1024 * 1024


class RegistryError(ValueError):
    """The registry file is unreadable or breaks the schema; the message says where."""


def _usd(value: object) -> int:
    return usd_to_micros(value)


Micros = Annotated[int, BeforeValidator(_usd)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Positive = Annotated[int, Field(ge=1)]


class _InputSpec(_Spec):
    min_side: Positive = 1
    max_side: Positive | None = None
    min_pixels: Positive | None = None
    max_pixels: Positive | None = None
    max_aspect: Annotated[float, Field(ge=1)] | None = None
    formats: list[Literal["PNG", "JPEG", "WEBP"]] = ["PNG", "JPEG"]
    max_bytes: Positive = 5 * 1024 * 1024
    opaque_only: bool = False
    nova_rules: bool = False


class _LimitsSpec(_Spec):
    max_text: int = Field(ge=1)
    sizes: SizeRule
    aspect_ratios: dict[str, tuple[int, int]] = {}
    edit_size_allowed: bool = False
    control_modes: list[ControlMode] = []
    cfg_scale_default: float | None = None
    seed_default: int | None = None
    seed_max: int = Field(ge=1)
    qualities: list[Quality] = Field(min_length=1)
    output_formats: list[OutputFormat] = Field(min_length=1)
    styles: list[str] = []
    input: _InputSpec = _InputSpec()


class _TierSpec(_Spec):
    max_pixels: int = Field(ge=1)
    standard_usd: Micros
    premium_usd: Micros


class _PriceSpec(_Spec):
    usd: Micros | None = None
    tiers: list[_TierSpec] | None = None


class _LifecycleSpec(_Spec):
    legacy: date | None = None
    eol: date | None = None
    replacement: str | None = None
    extended_access: bool = False


class _ModelSpec(_Spec):
    dialect: Dialect
    invoke_id: str = ""
    tasks: list[TaskType] = Field(min_length=1)
    limits: _LimitsSpec
    price: _PriceSpec
    price_source: str = ""
    lifecycle: _LifecycleSpec = _LifecycleSpec()


class _RegistrySpec(_Spec):
    version: Literal[1]
    defaults: dict[TaskType, str] = {}
    # Reusable blocks referenced by YAML anchors; not read after parsing.
    limits: dict[str, object] = {}
    models: dict[str, _ModelSpec] = Field(min_length=1)


def read_registry(path: Path = SHIPPED) -> tuple[dict[str, ModelSpec], dict[TaskType, str]]:
    """The models and per-task defaults of a registry file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = _RegistrySpec.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        raise RegistryError(f"{path}: {_first_problem(exc)}") from exc
    models = {model_id: _model(model_id, m) for model_id, m in spec.models.items()}
    return models, dict(spec.defaults)


def _first_problem(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
    ]
    return "; ".join(problems[:5])


def _model(model_id: str, spec: _ModelSpec) -> ModelSpec:
    life = spec.lifecycle
    return ModelSpec(
        model_id=model_id,
        dialect=spec.dialect,
        tasks=frozenset(spec.tasks),
        limits=_limits(spec.limits),
        price=_price(model_id, spec.price, spec.price_source),
        invoke_id=spec.invoke_id,
        lifecycle=Lifecycle(life.legacy, life.eol, life.replacement, life.extended_access),
    )


def _limits(spec: _LimitsSpec) -> ModelLimits:
    source = spec.input
    return ModelLimits(
        max_text=spec.max_text,
        size_rule=spec.sizes,
        seed_max=spec.seed_max,
        seed_default=spec.seed_default,
        cfg_scale_default=spec.cfg_scale_default,
        qualities=frozenset(spec.qualities),
        output_formats=tuple(spec.output_formats),
        input=InputRules(
            min_side=source.min_side,
            max_side=source.max_side,
            min_pixels=source.min_pixels,
            max_pixels=source.max_pixels,
            max_aspect=source.max_aspect,
            formats=frozenset(source.formats),
            max_bytes=source.max_bytes,
            opaque_only=source.opaque_only,
            nova_rules=source.nova_rules,
        ),
        control_modes=frozenset(spec.control_modes),
        styles=tuple(spec.styles),
        aspect_ratios=MappingProxyType(dict(spec.aspect_ratios)),
        edit_size_allowed=spec.edit_size_allowed,
    )


def _price(model_id: str, spec: _PriceSpec, source: str) -> Price:
    if (spec.usd is None) == (spec.tiers is None):
        raise RegistryError(f"models.{model_id}.price: give exactly one of usd or tiers")
    if spec.usd is not None:
        # Flat: one tier that holds any size, the same for both qualities.
        return Price((PriceTier(FLAT_MAX_PIXELS, spec.usd, spec.usd),), source)
    tiers = sorted(spec.tiers or [], key=lambda t: t.max_pixels)
    return Price(
        tuple(PriceTier(t.max_pixels, t.standard_usd, t.premium_usd) for t in tiers), source
    )
