"""What `evaluate` returns: the decision, and every change and observation behind it."""

from __future__ import annotations

from dataclasses import dataclass

from policies.facts import RequestFacts
from policies.moderation import ModerationVerdict


@dataclass(frozen=True)
class Rewrite:
    """One change a rule made to the request: field, old value, new value.

    `field` is a `RequestFacts` field name: quality, count, width, height,
    cfg_scale, or model (for `route`).
    """

    rule: str
    field: str
    old: object
    new: object


@dataclass(frozen=True)
class ShadowResult:
    """What a shadow rule would have done: ``would deny: ...``,
    ``would set quality: premium -> standard``, ``would change nothing``,
    or ``error: ...`` when its condition could not be evaluated."""

    rule: str
    effect: str
    outcome: str


@dataclass(frozen=True)
class RouteSplit:
    """The A/B split of the route rule that decided the model, and this request's arm.

    `sticky` is the kind the rule asks for (``tenant`` or ``request``);
    `keyed_by` the kind the bucket was drawn from (``tenant`` when a
    ``request`` split had no request key). `treatment`: sent to `model`.
    """

    rule: str
    model: str
    share: float
    sticky: str
    keyed_by: str
    treatment: bool


@dataclass(frozen=True)
class Decision:
    """Allowed or denied; the request as rewritten; everything that led there.

    `matched` names the enforced rules whose condition was true, in file
    order. A denied decision has `denied_by` (a rule name, ``moderation:<category>``,
    ``pricing`` or ``request``) and a zero price and estimate: nothing will be
    spent. `moderation` is the verdict on the prompt texts; it is a pass
    (``blocked=False``) when a rule denied the request before moderation ran.

    Routing: the last enforced `route` rule that applied sets `route_arm`
    (``<rule>:<model>`` when it has an A/B split, on either arm; else empty),
    `route_split` (the split and the arm, for `explain`) and `fallbacks` (its
    fallback chain without the chosen model). `model_prices` is (model, price
    per image) for the chosen model and then each fallback, at the request's
    size and quality; `price_per_image_micros` is the chosen model's price, and
    `estimate_micros` the dearest price in the chain times the image count, so
    a reservation covers whichever model ends up serving. A denied decision
    has no model prices.
    """

    allowed: bool
    request: RequestFacts
    rewrites: tuple[Rewrite, ...]
    shadow: tuple[ShadowResult, ...]
    matched: tuple[str, ...]
    denied_by: str | None
    message: str
    moderation: ModerationVerdict
    price_per_image_micros: int
    estimate_micros: int
    route_arm: str = ""
    fallbacks: tuple[str, ...] = ()
    model_prices: tuple[tuple[str, int], ...] = ()
    route_split: RouteSplit | None = None
