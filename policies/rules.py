"""Rules and their effects: what one rule does to a request when its condition holds.

Every effect is a pure function of the request (and, for `limit`, the model's
allowed sizes; for `route`, the tenant id its split may be keyed by) to an
`Outcome`: the new request and the rewrites that made it, or a denial message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from policies.conditions import Condition
from policies.decision import Rewrite
from policies.facts import FIXED_SIZE_TASKS, RequestFacts
from policies.routing import Route, RouteChoice, Split, choose
from policies.sizing import Size, nearest_allowed, scale_down, within

__all__ = [
    "SETTABLE",
    "Deny",
    "Effect",
    "Limit",
    "Outcome",
    "Route",
    "Rule",
    "SetFields",
    "Split",
    "apply_rule",
]

SETTABLE = ("quality", "count", "width", "height", "cfg_scale")


@dataclass(frozen=True)
class Deny:
    """Refuse the request; `message` is shown to the caller."""

    kind: ClassVar[str] = "deny"
    message: str


@dataclass(frozen=True)
class SetFields:
    """Set request fields (names from SETTABLE) to fixed values."""

    kind: ClassVar[str] = "set"
    values: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Limit:
    """Cap the image count and the output size."""

    kind: ClassVar[str] = "limit"
    max_images: int | None = None
    max_width: int | None = None
    max_height: int | None = None


Effect = Deny | SetFields | Limit | Route


@dataclass(frozen=True)
class Rule:
    """A named rule: when `condition` holds (None: always), apply `effect`.

    A shadow rule is evaluated and its outcome recorded, but never applied.
    """

    name: str
    effect: Effect
    condition: Condition | None = None
    shadow: bool = False
    description: str = ""

    @property
    def mode(self) -> str:
        return "shadow" if self.shadow else "enforce"


@dataclass(frozen=True)
class Outcome:
    """The request after one rule, the rewrites that made it, or a denial;
    for a `route` rule, also where it sent the request (arm, fallbacks)."""

    request: RequestFacts
    rewrites: tuple[Rewrite, ...] = ()
    denial: str | None = None
    route: RouteChoice | None = None


def apply_rule(
    rule: Rule, request: RequestFacts, sizes: Sequence[Size] | None, tenant: str = ""
) -> Outcome:
    """What `rule`'s effect does to `request` (of the tenant with id `tenant`)."""
    effect = rule.effect
    if isinstance(effect, Deny):
        return Outcome(request, denial=effect.message)
    if isinstance(effect, SetFields):
        return _set(rule.name, effect, request, sizes)
    if isinstance(effect, Limit):
        return _limit(rule.name, effect, request, sizes)
    choice = choose(rule.name, effect, request, tenant)
    return replace(_change(rule.name, request, (("model", choice.model),)), route=choice)


def _change(rule: str, request: RequestFacts, values: Sequence[tuple[str, object]]) -> Outcome:
    """Set each field, recording a Rewrite for every value that actually changes."""
    rewrites = []
    for name, new in values:
        old = getattr(request, name)
        if old != new:
            rewrites.append(Rewrite(rule, name, old, new))
            changed: dict[str, Any] = {name: new}
            request = replace(request, **changed)
    return Outcome(request, tuple(rewrites))


def _set(
    rule: str, effect: SetFields, request: RequestFacts, sizes: Sequence[Size] | None
) -> Outcome:
    values = effect.values
    if request.task in FIXED_SIZE_TASKS:  # the output is the input's size: nothing to set
        values = tuple((k, v) for k, v in values if k not in ("width", "height"))
    outcome = _change(rule, request, values)
    size = (outcome.request.width, outcome.request.height)
    resized = any(r.field in ("width", "height") for r in outcome.rewrites)
    if resized and sizes is not None and size not in sizes:
        offered = f"{size[0]}x{size[1]}, which model {request.model} does not offer"
        return Outcome(request, denial=f"rule '{rule}' sets the size to {offered}")
    return outcome


def _limit(rule: str, limit: Limit, request: RequestFacts, sizes: Sequence[Size] | None) -> Outcome:
    counted = _change(rule, request, _count_cap(limit, request))
    size = (request.width, request.height)
    if within(size, limit.max_width, limit.max_height):
        return counted
    bounds = _bounds(limit)
    if request.task in FIXED_SIZE_TASKS:
        denial = f"input image {size[0]}x{size[1]} is larger than this tier allows ({bounds})"
        return Outcome(request, denial=denial)
    if sizes is None:
        fitted: Size | None = scale_down(size, limit.max_width, limit.max_height)
    else:
        fitted = nearest_allowed(size, sizes, limit.max_width, limit.max_height)
    if fitted is None:
        asked = f"{size[0]}x{size[1]} was requested"
        return Outcome(request, denial=f"no size of model {request.model} fits {bounds}; {asked}")
    resized = _change(rule, counted.request, (("width", fitted[0]), ("height", fitted[1])))
    return Outcome(resized.request, counted.rewrites + resized.rewrites)


def _count_cap(limit: Limit, request: RequestFacts) -> tuple[tuple[str, object], ...]:
    if limit.max_images is None or request.count <= limit.max_images:
        return ()
    return (("count", limit.max_images),)


def _bounds(limit: Limit) -> str:
    if limit.max_width is not None and limit.max_height is not None:
        return f"max {limit.max_width}x{limit.max_height}"
    if limit.max_width is not None:
        return f"max width {limit.max_width}"
    return f"max height {limit.max_height}"
