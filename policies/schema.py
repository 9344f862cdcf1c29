"""The policy file's schema (pydantic v2): every key, its type and its bounds.

Strict and closed: unknown keys are errors, and YAML values are not coerced
(``"5"`` is not a number, ``1`` is not a string). Cross-field checks
(duplicates, unknown tiers, CEL, unreachable rules) live in `policies.checks`.
Money fields hold micro-USD once validated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import PydanticCustomError

from policies.money import usd_to_micros
from policies.problems import describe, not_a_string

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
RULE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
KEY_HASH_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
GUARDRAIL_VERSION_PATTERN = re.compile(r"[1-9][0-9]{0,7}|DRAFT")
RESERVED_RULE_NAMES = frozenset({"pricing", "request"})


def _fail(reason: str) -> PydanticCustomError:
    return PydanticCustomError("policy", "{reason}", {"reason": reason})


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _fail(not_a_string(value))
    return value


def _matching(pattern: re.Pattern[str], what: str, rule: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value)
        if not pattern.fullmatch(text):
            raise _fail(f"{what} {describe(text)} is not valid: {rule}")
        return text

    return check


def _key_hash(value: object) -> str:
    # The value is never echoed: a raw API key pasted here must not reach the logs.
    text = _text(value)
    if not KEY_HASH_PATTERN.fullmatch(text):
        raise _fail("expected 'sha256:' and 64 lowercase hex digits (the key's hash, not the key)")
    return text


_CERT_PREFIXES = ("CN=", "DNS:", "URI:")


def _client_certificate(value: object) -> str:
    text = _text(value)
    prefix = next((p for p in _CERT_PREFIXES if text.startswith(p)), None)
    if prefix is None or not text[len(prefix) :].strip() or len(text) > 1024:
        raise _fail(
            f"client certificate identity {describe(text)} is not valid: expected "
            "'CN=<common name>', 'DNS:<name>' or 'URI:<uri>'"
        )
    return text


def _rule_name(value: object) -> str:
    text = _matching(RULE_NAME_PATTERN, "rule name", _RULE_NAME_RULE)(value)
    if text in RESERVED_RULE_NAMES:
        raise _fail(f"rule name '{text}' is reserved: the engine denies under that name")
    return text


def _model_id(value: object) -> str:
    text = _text(value)
    if not text or len(text) > 2048 or any(c.isspace() for c in text):
        raise _fail(f"model id {describe(text)} is not valid: 1-2048 characters, no spaces")
    return text


def _usd(value: object) -> int:
    try:
        return usd_to_micros(value)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _usd_or_null(value: object) -> int | None:
    return None if value is None else _usd(value)


def _share(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"expected a number, got {describe(value)}")
    if not 0 < value < 1:  # NaN fails this too
        reason = "a share is a fraction more than 0 and less than 1 (0.3 sends 30%)"
        raise _fail(f"{reason}, got {describe(value)}")
    return float(value)


def _version(value: object) -> int:
    if type(value) is not int or value != 1:
        raise _fail(f"unsupported policy version {describe(value)}; this gateway reads version 1")
    return 1


_NAME_RULE = "use lowercase letters, digits, '_' and '-' (at most 63, first a letter or digit)"
_RULE_NAME_RULE = _NAME_RULE.replace("'_' and '-'", "'_', '.' and '-'")
TierName = Annotated[str, BeforeValidator(_matching(ID_PATTERN, "tier name", _NAME_RULE))]
TenantId = Annotated[str, BeforeValidator(_matching(ID_PATTERN, "tenant id", _NAME_RULE))]
CategoryName = Annotated[str, BeforeValidator(_matching(ID_PATTERN, "category name", _NAME_RULE))]
RuleName = Annotated[str, BeforeValidator(_rule_name)]
KeyHash = Annotated[str, BeforeValidator(_key_hash)]
ClientCertificate = Annotated[str, BeforeValidator(_client_certificate)]
ModelId = Annotated[str, BeforeValidator(_model_id)]
_GUARDRAIL_RULE = "a number from 1 to 99999999, or DRAFT"
GuardrailVersion = Annotated[
    str, BeforeValidator(_matching(GUARDRAIL_VERSION_PATTERN, "guardrail version", _GUARDRAIL_RULE))
]
Usd = Annotated[int, BeforeValidator(_usd)]
UsdOrNull = Annotated[int | None, BeforeValidator(_usd_or_null)]
PositiveCount = Annotated[int, Field(ge=1)]
Side = Annotated[int, Field(ge=16)]
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Share = Annotated[float, BeforeValidator(_share)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


SpecT = TypeVar("SpecT", bound=Spec)


class QuotasSpec(Spec):
    requests_per_minute: PositiveCount | None = None
    images_per_minute: PositiveCount | None = None
    images_per_day: PositiveCount | None = None
    max_concurrent_requests: PositiveCount | None = None


class BudgetSpec(Spec):
    daily_usd: UsdOrNull = None
    monthly_usd: UsdOrNull = None
    total_usd: UsdOrNull = None
    alert_thresholds: list[Fraction] = []


def _provenance(value: Any) -> Any:
    # YAML 1.1 reads a bare `off` as false (and `on` as true): take them as meant.
    if value is False:
        return "off"
    if value is True:
        return "required"
    return value


# How the images of a tenant carry provenance (C2PA manifest + watermark):
# "required" fails an image that could not be marked, "best_effort" delivers
# it unmarked, "off" never marks. None: inherit (the tier's, else required).
Provenance = Annotated[Literal["required", "best_effort", "off"], BeforeValidator(_provenance)]


class TierSpec(Spec):
    quotas: QuotasSpec = QuotasSpec()
    budget: BudgetSpec = BudgetSpec()
    provenance: Provenance | None = None


class TenantSpec(Spec):
    id: TenantId
    tier: str
    labels: list[str] = []
    api_keys: list[KeyHash] = []
    client_certificates: list[ClientCertificate] = []
    quotas: QuotasSpec = QuotasSpec()
    budget: BudgetSpec = BudgetSpec()
    provenance: Provenance | None = None


class SizeClassSpec(Spec):
    max_pixels: PositiveCount
    standard_usd: Usd
    premium_usd: Usd


class ModelPriceSpec(Spec):
    model: ModelId
    sizes: Annotated[list[SizeClassSpec], Field(min_length=1)]


class SetSpec(Spec):
    quality: Literal["standard", "premium"] | None = None
    count: PositiveCount | None = None
    width: Side | None = None
    height: Side | None = None
    cfg_scale: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None


class LimitSpec(Spec):
    max_images: PositiveCount | None = None
    max_width: Side | None = None
    max_height: Side | None = None


class SplitSpec(Spec):
    model: ModelId
    share: Share
    sticky: Literal["tenant", "request"] = "tenant"


class RouteSpec(Spec):
    """``route: <model id>`` (read as ``{model: <model id>}``) or the mapping form."""

    model: ModelId | None = None
    split: SplitSpec | None = None
    fallback: list[ModelId] = []
    _short: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _either_form(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> RouteSpec:
        if isinstance(value, str):
            spec: RouteSpec = handler({"model": _model_id(value)})
            spec._short = True
            return spec
        if not isinstance(value, dict | RouteSpec):
            expected = "a model id or a mapping with model, split, fallback"
            raise _fail(f"expected {expected}, got {describe(value)}")
        routed: RouteSpec = handler(value)
        return routed

    @property
    def short_form(self) -> bool:
        """Whether the file wrote ``route: <model id>``."""
        return self._short

    def models(self) -> list[str]:
        """Every model this route may send a request to: model, split, fallbacks."""
        split = [self.split.model] if self.split is not None else []
        return [*([self.model] if self.model is not None else []), *split, *self.fallback]


class RuleSpec(Spec):
    name: RuleName
    description: str = ""
    when: str | None = None
    mode: Literal["enforce", "shadow"] = "enforce"
    deny: Annotated[str, Field(min_length=1)] | None = None
    set_: SetSpec | None = Field(None, alias="set")
    limit: LimitSpec | None = None
    route: RouteSpec | None = None

    def effects(self) -> list[str]:
        """The effect keys this rule has (exactly one when valid)."""
        present = {"deny": self.deny, "set": self.set_, "limit": self.limit, "route": self.route}
        return [name for name, value in present.items() if value is not None]


class CategorySpec(Spec):
    name: CategoryName
    terms: list[str] = []
    patterns: list[str] = []


class GuardrailSpec(Spec):
    id: Annotated[str, Field(min_length=1)]
    version: GuardrailVersion


class ModerationSpec(Spec):
    leetspeak: bool = True
    allow: list[str] = []
    categories: list[CategorySpec] = []
    guardrail: GuardrailSpec | None = None


class PolicyDocument(Spec):
    """The whole file. Only `version` is required."""

    version: Annotated[int, BeforeValidator(_version)]
    admin_keys: list[KeyHash] = []
    tiers: dict[TierName, TierSpec] = {}
    tenants: list[TenantSpec] = []
    pricing: list[ModelPriceSpec] | None = None
    rules: list[RuleSpec] = []
    moderation: ModerationSpec = ModerationSpec()


def merged(base: SpecT, override: SpecT) -> SpecT:
    """`base` with every key `override` sets explicitly (null included) replaced."""
    return base.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})
