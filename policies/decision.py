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
class Decision:
    """Allowed or denied; the request as rewritten; everything that led there.

    `matched` names the enforced rules whose condition was true, in file
    order. A denied decision has `denied_by` (a rule name, ``moderation:<category>``,
    ``pricing`` or ``request``) and a zero price and estimate: nothing will be
    spent. `moderation` is the verdict on the prompt texts; it is a pass
    (``blocked=False``) when a rule denied the request before moderation ran.
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
