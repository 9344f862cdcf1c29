"""The `route` effect: the model a request goes to, its A/B split arm, its fallbacks.

Pure and deterministic. A split's arm comes from a sticky bucket, a number in
[0, 1) drawn from a hash of the rule's name and a key::

    bucket = int.from_bytes(sha256(f"{rule}\\0{key}".encode()).digest()[:8], "big") / 2**64

and the request goes to the split's model when ``bucket < share``. The key is
the tenant id (``sticky: tenant``, the default: a tenant always sees the same
arm) or the request key (``sticky: request``: each request is drawn on its own,
and a retry with the same client request id lands in the same arm); an empty
request key falls back to the tenant id. Rules with different names bucket
independently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from policies.decision import RouteSplit
from policies.facts import RequestFacts

STICKY_KINDS = ("tenant", "request")
_BUCKETS = 2**64


@dataclass(frozen=True)
class Split:
    """Send `share` (0 < share < 1) of the matching requests to `model`."""

    model: str
    share: float
    sticky: str = "tenant"


@dataclass(frozen=True)
class Route:
    """Send the request to `model` (None: keep the request's model), or to the
    split's model for the split's share; `fallback` lists the models to try, in
    order, when the chosen one is throttled, unavailable, not enabled or retired.
    ``route: <model id>`` is ``Route(<model id>)``."""

    kind: ClassVar[str] = "route"
    model: str | None = None
    split: Split | None = None
    fallback: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteChoice:
    """Where one route rule sends one request.

    `arm` is ``<rule>:<model>`` when the rule has a split (either arm), else
    empty; `fallbacks` is the rule's chain without the chosen model.
    """

    model: str
    arm: str = ""
    fallbacks: tuple[str, ...] = ()
    split: RouteSplit | None = None


def bucket(rule: str, key: str) -> float:
    """The sticky bucket of `key` under `rule`, in [0, 1)."""
    digest = hashlib.sha256(f"{rule}\0{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / _BUCKETS


def sticky_key(split: Split, tenant: str, request: RequestFacts) -> tuple[str, str]:
    """The kind of key the bucket is drawn from (tenant or request), and the key."""
    if split.sticky == "request" and request.request_key:
        return "request", request.request_key
    return "tenant", tenant


def choose(rule: str, route: Route, request: RequestFacts, tenant: str) -> RouteChoice:
    """The model `route` (in the rule named `rule`) sends `request` of `tenant` to."""
    model = route.model if route.model is not None else request.model
    split: RouteSplit | None = None
    if route.split is not None:
        keyed_by, key = sticky_key(route.split, tenant, request)
        treatment = bucket(rule, key) < route.split.share
        model = route.split.model if treatment else model
        s = route.split
        split = RouteSplit(rule, s.model, s.share, s.sticky, keyed_by, treatment)
    fallbacks = tuple(m for m in route.fallback if m != model)
    arm = f"{rule}:{model}" if split is not None else ""
    return RouteChoice(model, arm, fallbacks, split)


def percent(share: float) -> str:
    """``0.3`` -> ``30%``; ``0.125`` -> ``12.5%``."""
    return f"{share * 100:.6g}%"
